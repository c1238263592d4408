"""Stage `extract`: a training checkpoint -> plain backbone weights + a JSON describing them.

The weights are the backbone's own state dict (keys as in torchvision's ResNet), so they load into
the backbone alone; the JSON records the algorithm, the backbone config, the evaluation pipeline,
the source checkpoint and the sha256 of both files.

Checkpoints from elsewhere work too, given `--config` (the config whose `model.backbone` they fit):
an MMSelfSup checkpoint (`state_dict` with `backbone.*` keys), or bare backbone weights such as
torchvision's (`module.` prefixes and a classifier `fc.*` are dropped). They are loaded with
`weights_only=True` and must fit the backbone exactly.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys

import torch

from .. import outlock, storage
from ..benchmarks.features import DEFAULT_EVAL_PIPELINE, build_backbone, config_from_text
from ..config import load_config
from ..engine.checkpoint import newest
from ..errors import DataError
from ._cli import run_cli


def _checkpoint_uri(checkpoint: str) -> str:
    """A .pth as given; a pretrain artifact's checkpoint.pth; else the newest epoch_N.pth of a work dir
    (so a nightly run can point at a training work dir and evaluate its latest checkpoint)."""
    if checkpoint.endswith((".pth", ".pt")):
        return checkpoint
    artifact = storage.join(checkpoint, "checkpoint.pth")
    if storage.exists(artifact):
        return artifact
    return newest(checkpoint) or artifact


def _backbone_weights(state: dict, uri: str) -> dict:
    """The backbone's tensors of a checkpoint: `backbone.*` of a whole model, else all but a classifier."""
    tensors = state.get("state_dict", state.get("model", state))
    if not isinstance(tensors, dict):
        raise DataError(f"{uri}: no state dict found (looked at 'state_dict', 'model' and the top level)")
    tensors = {k.removeprefix("module."): v for k, v in tensors.items() if isinstance(v, torch.Tensor)}
    if any(k.startswith("backbone.") for k in tensors):
        return {k.removeprefix("backbone."): v for k, v in tensors.items() if k.startswith("backbone.")}
    return {k: v for k, v in tensors.items() if not k.startswith("fc.")}


def _check_fit(backbone_cfg: dict, weights: dict, uri: str) -> None:
    model = build_backbone(backbone_cfg)
    expected, given = set(model.state_dict()), set(weights)
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    what = f"backbone {backbone_cfg.get('type')} (depth {backbone_cfg.get('depth')})"
    if missing or unexpected:
        raise DataError(f"{uri} does not fit {what}: {len(missing)} missing keys {missing[:4]}, "
                        f"{len(unexpected)} unexpected keys {unexpected[:4]}")
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:  # shapes: the last line names the first tensor that differs
        raise DataError(f"{uri} does not fit {what}: {str(err).splitlines()[-1].strip()}") from err


@outlock.writes("output")
def extract(checkpoint: str, output: str, config: str = "", cfg_options: list[str] | None = None) -> dict:
    uri = _checkpoint_uri(checkpoint)
    if not storage.exists(uri):
        raise DataError(f"checkpoint not found: {uri}")
    raw = storage.read_bytes(uri)
    try:
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling refuses anything but tensors and plain containers
        raise DataError(f"{uri} is not a loadable checkpoint (weights_only=True): {err}") from err
    if not isinstance(state, dict):
        raise DataError(f"{uri} holds a {type(state).__name__}, not a checkpoint or state dict")
    meta = state.get("meta") if isinstance(state.get("meta"), dict) else {}
    ours = "state_dict" in state and "config" in meta and "algorithm" in meta
    if config:
        cfg = load_config(config, cfg_options or [])
    elif ours:
        cfg = config_from_text(meta["config"])
    else:
        raise DataError(f"{uri} was not written by ssl_lib's engine: give --config, a config whose model.backbone "
                        f"these weights fit (e.g. selfsup/mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py)")
    weights = _backbone_weights(state, uri)
    if not weights:
        raise DataError(f"{uri}: the model has no 'backbone.*' parameters")
    backbone_cfg = cfg.model.backbone.to_dict()
    if not ours or config:
        _check_fit(backbone_cfg, weights, uri)
    buf = io.BytesIO()
    torch.save(weights, buf)
    meta = {
        "algorithm": meta["algorithm"] if ours else "external",
        "epoch": meta.get("epoch"),
        "backbone": backbone_cfg,
        "eval_pipeline": cfg.to_dict().get("eval_pipeline", DEFAULT_EVAL_PIPELINE),
        "source_checkpoint": uri,
        "source_sha256": hashlib.sha256(raw).hexdigest(),
        "sha256": hashlib.sha256(buf.getvalue()).hexdigest(),
        "num_tensors": len(weights),
    }
    with storage.publish_dir(output) as staging:
        (staging / "backbone.pth").write_bytes(buf.getvalue())
        (staging / "backbone.json").write_text(json.dumps(meta, indent=2))
    return {"algorithm": meta["algorithm"], "epoch": meta["epoch"], "sha256": meta["sha256"],
            "weights": storage.join(output, "backbone.pth")}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ssl_lib.stages.extract", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="pretrain artifact folder or a .pth (local or s3://)")
    p.add_argument("--output", required=True, help="folder or s3:// URI for backbone.pth + backbone.json")
    p.add_argument("--config", default="",
                   help="for a checkpoint from elsewhere: a config whose model.backbone its weights fit")
    p.add_argument("--cfg-options", nargs="*", default=[], metavar="KEY=VALUE")
    return p


if __name__ == "__main__":
    sys.exit(run_cli(build_parser(), extract))
