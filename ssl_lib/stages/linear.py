"""Stage `linear`: the seed's linear evaluation of a frozen backbone on a prepared dataset: linear
heads on feat1..feat5 (multi-head) and on the global average pool, trained with SGD on augmented
train images, top-1 / top-5 of each head on the test split.

The config is a linear config under ssl_lib/configs/benchmarks/classification/ (the seed's file
names: imagenet/, places205/, inaturalist2018/; fmnist/ for CPUs); the backbone is the backbone
artifact's (backbone.json). Single-label datasets only: a multi-label one (VOC07) goes to the SVM.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time

import numpy as np
import torch
from torch.utils.data import Subset

from .. import outlock, storage
from ..benchmarks.features import is_swin, is_vit, load_backbone, load_backbone_meta
from ..benchmarks.linear import build_head, token_heads, train_linear
from ..config import load_config
from ..data.sources import balanced_first, load_manifest
from ..errors import ConfigError, DataError
from ..registry import DATASETS, build
from ._cli import require_gpus, run_cli

DEFAULT_CONFIG = "benchmarks/classification/fmnist/resnet_mhead_1xb64-steplr-2e_fmnist-2k.py"
BACKBONE_EVAL = "BackboneEvalPipeline"


def _pipeline(cfg_pipeline, eval_pipeline: list, where: str) -> list:
    """The config's pipeline with `dict(type='BackboneEvalPipeline')` replaced by the backbone's own."""
    if not isinstance(cfg_pipeline, (list, tuple)) or not cfg_pipeline:
        raise ConfigError(f"{where} must be a non-empty list of transforms, got {cfg_pipeline!r}")
    out = []
    for step in cfg_pipeline:
        out.extend(eval_pipeline if dict(step).get("type") == BACKBONE_EVAL else [dict(step)])
    return out


def _split(dataset: str, split: str, pipeline: list):
    import ssl_lib.data  # noqa: F401  (registers sources, datasets, transforms)

    ds = build(dict(type="SingleViewDataset", data_source=dict(type="ParquetShards", root=dataset, split=split),
                    pipeline=pipeline), DATASETS)
    if len(ds) == 0:
        raise DataError(f"dataset {dataset}: split '{split}' is empty; linear evaluation needs train and test images")
    if np.ndim(ds.data_source.labels) != 1:
        raise ConfigError(f"dataset {dataset} is multi-label (one label vector per image); linear evaluation "
                          f"takes single-label datasets: use the svm benchmark for VOC07-style data")
    return ds


@outlock.writes("output")
def linear(dataset: str, backbone: str, output: str, config: str = DEFAULT_CONFIG, cfg_options: list[str] | None = None,
           epochs: int | None = None, workers: int | None = None, gpus: int = 0, seed: int = 0) -> dict:
    cfg = load_config(config, cfg_options or [])
    max_epochs = int(epochs or cfg.get("runner", {}).get("max_epochs", 0))
    if max_epochs <= 0:
        raise ConfigError(f"linear: epochs must be positive, got {epochs or cfg.get('runner')}")
    require_gpus("linear", gpus)
    for key in ("model", "data", "optimizer"):
        if key not in cfg:
            raise ConfigError(f"{config}: no `{key}`; is it a linear config (benchmarks/classification/...)?")
    manifest = load_manifest(dataset)
    if manifest.get("multi_label"):
        raise ConfigError(f"dataset {dataset} is multi-label; linear evaluation takes single-label datasets: "
                          f"use the svm benchmark for VOC07-style data")
    meta = load_backbone_meta(backbone)
    eval_pipeline = meta.get("eval_pipeline") or []
    data = cfg.data
    train_ds = _split(dataset, "train", _pipeline(data.train.pipeline, eval_pipeline, "data.train.pipeline"))
    test_ds = _split(dataset, "test", _pipeline(data.val.pipeline, eval_pipeline, "data.val.pipeline"))
    classes = list(train_ds.data_source.classes)
    labels = np.asarray(train_ds.data_source.labels)
    if labels.min() < 0 or labels.max() >= len(classes):
        raise DataError(f"dataset {dataset}: train labels span {labels.min()}..{labels.max()} for "
                        f"{len(classes)} classes")
    limit = int(data.get("train_limit", 0) or 0)
    if limit < 0:
        raise ConfigError(f"data.train_limit must be >= 0 (0: the whole split), got {limit}")
    if 0 < limit < len(train_ds):
        train_ds = Subset(train_ds, balanced_first(labels, limit).tolist())

    model = load_backbone(backbone)[0].eval()
    with torch.no_grad():
        maps = model(test_ds[0]["img"][None])
    torch.manual_seed(seed)
    if is_vit(meta["backbone"]) or is_swin(meta["backbone"]):  # CLS token / patch mean, or the last map's mean
        head = token_heads(cfg.model.head.to_dict(), maps, len(classes))
    elif len(maps) != 5:
        raise ConfigError(f"backbone {backbone} gives {len(maps)} feature maps; the linear heads need 5 "
                          f"(stem + 4 stages)")
    else:
        head = build_head(cfg.model.head.to_dict(), [m.shape[1] for m in maps], len(classes))
    batch_size = int(data.samples_per_gpu) * int(data.get("recipe_gpus", 1))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if workers is None:
        workers = int(data.get("workers_per_gpu", 0)) if device == "cuda" else 0
    print(f"linear: {config}, heads {' '.join(f'{n} ({d})' for n, d in head.dims.items())}, {len(train_ds)} train / "
          f"{len(test_ds)} test images, batch {batch_size}, {max_epochs} epochs on {device}", flush=True)

    start = time.time()
    result = train_linear(model, head, train_ds, test_ds, optimizer=cfg.optimizer.to_dict(),
                          lr_config=dict(cfg.get("lr_config") or {}), max_epochs=max_epochs, batch_size=batch_size,
                          eval_interval=int((cfg.get("evaluation") or {}).get("interval") or 0),
                          workers=workers, device=device, seed=seed, log=lambda line: print(line, flush=True))
    heads = result["heads"]
    metrics = {"protocol": "linear", "config": config, "cfg_options": list(cfg_options or []),
               "heads": heads, "best_layer": max(heads, key=lambda n: heads[n]["top1"]),
               "dims": head.dims, "epochs": max_epochs, "batch_size": batch_size, "num_train": len(train_ds),
               "num_test": len(test_ds), "classes": classes, "seed": seed, "backbone_sha256": meta.get("sha256"),
               "algorithm": meta.get("algorithm"), "seconds": round(time.time() - start, 1),
               "history": result["history"]}
    with storage.publish_dir(output) as staging:
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
        buf = io.BytesIO()
        torch.save(head.state_dict(), buf)
        (staging / "heads.pth").write_bytes(buf.getvalue())
    return metrics


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ssl_lib.stages.linear", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help="prepared dataset folder or s3:// URI")
    p.add_argument("--backbone", required=True, help="extract stage output (backbone.pth + backbone.json)")
    p.add_argument("--output", required=True)
    p.add_argument("--config", default=DEFAULT_CONFIG,
                   help="linear config (path, or name under ssl_lib/configs), e.g. "
                        "benchmarks/classification/imagenet/resnet50_mhead_8xb32-steplr-90e_in1k.py")
    p.add_argument("--cfg-options", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--epochs", type=int, default=None, help="override runner.max_epochs (0 or none: the config's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gpus", type=int, default=0, help="GPUs the step was given; fail early if fewer are visible")
    p.add_argument("--workers", type=int, default=None,
                   help="image-decoding processes (default: the config's workers_per_gpu on a GPU, none on a CPU)")
    return p


if __name__ == "__main__":
    sys.exit(run_cli(build_parser(), linear))
