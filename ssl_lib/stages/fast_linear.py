"""Stage `fast_linear`: the fast linear protocol (ours) on the features artifact. Every layer x a sweep
of learning rates x weight decays is trained at once on the cached features; the setting is chosen
on a held-out, class-stratified part of the train split, never on test; the chosen setting's test
top-1 / top-5 are reported overall and per layer, with the whole sweep. Single-label features only.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from .. import outlock, storage
from ..benchmarks.fast_linear import DEFAULT_LRS, DEFAULT_WEIGHT_DECAYS, choose, stratified_holdout, sweep_layer
from ..benchmarks.features import POOL_SIZES, load_feature_set
from ..errors import ConfigError, DataError
from ._cli import require_gpus, run_cli

SPLITS = ("train", "test")


def _check_params(lrs, weight_decays, epochs, batch_size, val_fraction) -> None:
    if not lrs or any(not np.isfinite(v) or v <= 0 for v in lrs):
        raise ConfigError(f"fast_linear: lrs must be positive numbers, got {lrs}")
    if not weight_decays or any(not np.isfinite(v) or v < 0 for v in weight_decays):
        raise ConfigError(f"fast_linear: weight_decays must be non-negative numbers, got {weight_decays}")
    if epochs <= 0 or batch_size <= 0:
        raise ConfigError(f"fast_linear: epochs and batch_size must be positive, got {epochs} and {batch_size}")
    if not 0 < val_fraction < 1:
        raise ConfigError(f"fast_linear: val_fraction must be in (0, 1), got {val_fraction}")


def _load_checked(fs, uri: str, layers: list[str], val_fraction: float) -> dict:
    """Every array the sweep will read, checked before any training: widths, rows, labels, values."""
    if fs.multi_label:
        raise ConfigError(f"features {uri} are multi-label (VOC07-style label vectors); the fast linear protocol "
                          f"takes single-label features: use the svm benchmark for them")
    for split in SPLITS:
        if not fs.splits.get(split):
            raise DataError(f"features {uri}: split '{split}' is empty or missing ({fs.splits}); "
                            f"fast linear needs train and test")
    num_classes = len(fs.classes)
    labels = {}
    for split in SPLITS:
        y = fs.y(split)
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{storage.join(uri, split + '.labels.npy')}: expected int class indices (N,), "
                            f"got {y.dtype} {y.shape}")
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            raise DataError(f"{storage.join(uri, split + '.labels.npy')}: labels span {y.min()}..{y.max()} "
                            f"for {num_classes} classes")
        labels[split] = y
    if len(np.unique(labels["train"])) < 2:
        raise DataError(f"features {uri}: the train split has a single class; nothing to classify")
    if not len(stratified_holdout(labels["train"], val_fraction)[1]):
        raise DataError(f"features {uri}: no class has 2 train samples, so nothing can be held out to choose on")
    sides = fs.meta.get("pool_sizes") or {}
    arrays = {}
    for layer in layers:
        dim = int(fs.meta["dims"][layer])
        side = int(sides.get(layer, POOL_SIZES.get(layer, 1)))
        if dim % (side * side):
            raise DataError(f"features {uri}: layer {layer} has {dim} dims, not channels x {side} x {side} "
                            f"(its pool size)")
        for split in SPLITS:
            x = fs.x(split, layer)
            name = storage.join(uri, f"{split}.pretrained.{layer}.npy")
            if x.ndim != 2 or x.shape[1] != dim:
                raise DataError(f"{name}: shape {x.shape}, but features.json gives {layer} {dim} dims")
            if len(x) != len(labels[split]):
                raise DataError(f"{name}: {len(x)} rows for {len(labels[split])} labels")
            if not np.isfinite(x).all():
                raise DataError(f"{name}: holds NaN or infinite values")
            arrays[(split, layer)] = x
    return {"labels": labels, "arrays": arrays, "sides": sides, "num_classes": num_classes}


@outlock.writes("output")
def fast_linear(features: str, output: str, layers: list[str] | None = None, lrs: list[float] | None = None,
                weight_decays: list[float] | None = None, epochs: int = 10, batch_size: int = 256,
                val_fraction: float = 0.1, seed: int = 0, gpus: int = 0) -> dict:
    lrs = [float(v) for v in (lrs or DEFAULT_LRS)]
    weight_decays = [float(v) for v in (DEFAULT_WEIGHT_DECAYS if weight_decays is None else weight_decays)]
    _check_params(lrs, weight_decays, epochs, batch_size, val_fraction)
    require_gpus("fast_linear", gpus)
    fs = load_feature_set(features)
    layers = list(layers or fs.layers)
    unknown = [layer for layer in layers if layer not in fs.layers]
    if unknown:
        raise ConfigError(f"fast_linear: layers {unknown} are not in {features} (it has {fs.layers})")
    data = _load_checked(fs, features, layers, val_fraction)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"fast_linear: {len(layers)} layers x {len(lrs)} lrs x {len(weight_decays)} weight decays, "
          f"{fs.splits['train']} train ({val_fraction:.0%} held out) / {fs.splits['test']} test, {epochs} epochs "
          f"on {device}", flush=True)

    start = time.time()
    sweep, per_layer = [], {}
    for layer in layers:
        tic = time.time()
        side = int(data["sides"].get(layer, POOL_SIZES.get(layer, 1)))
        rows = sweep_layer(data["arrays"][("train", layer)], data["labels"]["train"], data["arrays"][("test", layer)],
                           data["labels"]["test"], side, data["num_classes"], lrs, weight_decays, epochs, batch_size,
                           val_fraction, seed, device)
        rows = [dict(layer=layer, **row) for row in rows]
        sweep.extend(rows)
        per_layer[layer] = choose(rows)
        best = per_layer[layer]
        print(f"fast_linear {layer:8s} chosen lr {best['lr']:g} wd {best['weight_decay']:g}: val top-1 "
              f"{best['val_top1']:.4f}, test top-1 {best['test_top1']:.4f} ({time.time() - tic:.1f}s)", flush=True)
    chosen = choose([per_layer[layer] for layer in layers])
    metrics = {"protocol": "fast_linear", "chosen": chosen, "per_layer": per_layer, "best_layer": chosen["layer"],
               "sweep": sweep, "lrs": lrs, "weight_decays": weight_decays, "epochs": epochs, "batch_size": batch_size,
               "val_fraction": val_fraction, "seed": seed, "num_train": int(fs.splits["train"]),
               "num_test": int(fs.splits["test"]), "backbone_sha256": fs.meta.get("backbone_sha256"),
               "algorithm": fs.meta.get("algorithm"), "seconds": round(time.time() - start, 1)}
    with storage.publish_dir(output) as staging:
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ssl_lib.stages.fast_linear", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", required=True, help="features stage output (folder or s3:// URI)")
    p.add_argument("--output", required=True)
    p.add_argument("--layers", nargs="+", default=None, help="layers to sweep (default: all in the artifact)")
    p.add_argument("--lrs", type=float, nargs="+", default=list(DEFAULT_LRS))
    p.add_argument("--weight-decays", type=float, nargs="+", default=list(DEFAULT_WEIGHT_DECAYS))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="class-stratified share of the train split held out to choose the setting")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gpus", type=int, default=0, help="GPUs the step was given; fail early if fewer are visible")
    return p


if __name__ == "__main__":
    sys.exit(run_cli(build_parser(), fast_linear))
