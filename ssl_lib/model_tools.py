"""What the seed's tools do to models and checkpoints: count parameters, publish a checkpoint."""
from __future__ import annotations

import hashlib
import io

import torch

from . import storage
from .errors import DataError


def count_parameters(cfg) -> dict:
    """Parameters of the algorithm a config builds: total, trainable, and per part (backbone, neck, ...)."""
    import ssl_lib.models  # noqa: F401  (registers the algorithms)
    from .registry import ALGORITHMS, build

    model = build(cfg.model, ALGORITHMS)
    counts = {"total": sum(p.numel() for p in model.parameters()),
              "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    for name, child in model.named_children():
        counts[name] = sum(p.numel() for p in child.parameters())
    return counts


def publish_model(src: str, dst: str) -> str:
    """Write `src` without its optimizer, scaler, RNG and hook state, as CPU tensors, to `dst` with the first
    8 hex digits of its sha256 before the suffix (`model.pth` -> `model-1a2b3c4d.pth`); returns that URI."""
    try:
        state = torch.load(io.BytesIO(storage.read_bytes(src)), map_location="cpu", weights_only=True)
    except Exception as err:
        raise DataError(f"{src} is not a loadable checkpoint (weights_only=True): {err}") from err
    if not isinstance(state, dict) or "state_dict" not in state:
        raise DataError(f"{src} has no 'state_dict': not a training checkpoint")
    kept = {k: v for k, v in state.items() if k not in ("optimizer", "scaler", "rng", "hooks")}
    buf = io.BytesIO()
    torch.save(kept, buf)
    digest = hashlib.sha256(buf.getvalue()).hexdigest()[:8]
    stem, dot, suffix = dst.rpartition(".") if dst.endswith((".pth", ".pt")) else (dst, ".", "pth")
    uri = f"{stem}-{digest}{dot}{suffix}"
    storage.write_bytes(uri, buf.getvalue())
    return uri
