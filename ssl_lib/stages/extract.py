"""Stage `extract`: a training checkpoint -> plain backbone weights + a JSON describing them.

The weights are the backbone's own state dict (keys as in torchvision's ResNet), so they load into
the backbone alone; the JSON records the algorithm, the backbone config, the evaluation pipeline,
the source checkpoint and the sha256 of both files.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys

import torch

from .. import storage
from ..benchmarks.features import DEFAULT_EVAL_PIPELINE, config_from_text
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


def extract(checkpoint: str, output: str) -> dict:
    uri = _checkpoint_uri(checkpoint)
    if not storage.exists(uri):
        raise DataError(f"checkpoint not found: {uri}")
    raw = storage.read_bytes(uri)
    try:
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling refuses anything but tensors and plain containers
        raise DataError(f"{uri} is not a loadable checkpoint (weights_only=True): {err}") from err
    if "state_dict" not in state or "meta" not in state:
        raise DataError(f"{uri} has no 'state_dict'/'meta': not a checkpoint written by ssl_lib's engine")
    weights = {k.removeprefix("backbone."): v for k, v in state["state_dict"].items() if k.startswith("backbone.")}
    if not weights:
        raise DataError(f"{uri}: the model has no 'backbone.*' parameters")
    cfg = config_from_text(state["meta"]["config"])
    buf = io.BytesIO()
    torch.save(weights, buf)
    meta = {
        "algorithm": state["meta"]["algorithm"],
        "epoch": state["meta"]["epoch"],
        "backbone": cfg.model.backbone.to_dict(),
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
    return p


if __name__ == "__main__":
    sys.exit(run_cli(build_parser(), extract))
