"""Stage `svm`: the seed's VOC07 SVM protocol on the features artifact (stage `features`): per layer
and class a linear SVM per cost, the cost chosen by 3-fold cross-validated AP on the train split, the
test AP of the refit SVM; mAP per layer and the best layer, as the seed's benchmark table prints them.

A single-label feature set is read one-vs-rest (each class: its images 1, every other image -1)."""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from .. import outlock, storage
from ..benchmarks.features import FeatureSet, load_feature_set
from ..benchmarks.svm import SEED_COSTS, SolverStats, train_svm_voc07
from ..errors import ConfigError, DataError
from ._cli import run_cli


@outlock.writes("output")
def svm(features: str, output: str, layers: list[str] | None = None, costs: list[float] | None = None,
        folds: int = 3, device: str | None = None) -> dict:
    costs = [float(c) for c in (costs or SEED_COSTS)]
    if any(c <= 0 for c in costs):
        raise ConfigError(f"svm: costs must be positive, got {costs}")
    if folds < 2:
        raise ConfigError(f"svm: folds must be at least 2, got {folds}")
    fs, layers, labels, reading = read_voc_features(features, layers, "svm")
    check_classes(fs, labels, "svm", {"train": folds, "test": 1}, need_absent={"train": folds},
                  why=f"{folds}-fold cross-validation needs {folds} of each in train, the test AP a present image "
                      f"in test")
    start, results, stats = time.time(), {}, SolverStats()
    for layer in layers:
        t = time.time()
        out = train_svm_voc07(fs.x("train", layer), labels["train"], fs.x("test", layer), labels["test"],
                              costs=costs, folds=folds, device=device, stats=stats)
        results[layer] = {"mAP": out["mAP"], "ap": dict(zip(fs.classes, map(float, out["ap"]))),
                          "cost": dict(zip(fs.classes, out["cost"]))}
        print(f"svm {layer:8s} mAP {100 * out['mAP']:6.2f}  ({time.time() - t:.1f}s)", flush=True)
    metrics = {"protocol": "svm_voc07", "layers": results, "best_layer": max(results, key=lambda k: results[k]["mAP"]),
               "costs": costs, "folds": folds, "labels": reading, "num_train": fs.splits["train"],
               "num_test": fs.splits["test"], "solver": vars(stats), "seconds": round(time.time() - start, 1)}
    with storage.publish_dir(output) as staging:
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def read_voc_features(features: str, layers: list[str] | None, protocol: str):
    """The feature set, the layers to run, the 1 / -1 / 0 label matrix of each split and how the labels
    were read ("multi_label" or "one_vs_rest"); every array checked before any SVM is trained."""
    fs = load_feature_set(features)
    layers = list(layers or fs.layers)
    unknown = [layer for layer in layers if layer not in fs.layers]
    if unknown:
        raise ConfigError(f"{protocol}: layers {unknown} are not in {features} (it has {fs.layers})")
    labels = {}
    for split in ("train", "test"):
        if not fs.splits.get(split):
            raise DataError(f"{protocol}: split '{split}' of {features} is empty; the protocol needs a train and a "
                            f"test split")
        labels[split] = _labels(fs, split, protocol)
    for layer in layers:
        widths = {}
        for split in ("train", "test"):
            x = fs.x(split, layer)
            where = f"{protocol}: {features} {split}.pretrained.{layer}.npy"
            if x.ndim != 2 or len(x) != len(labels[split]):
                raise DataError(f"{where}: shape {x.shape}, expected ({len(labels[split])}, dims) for the labels")
            if not np.isfinite(x).all():
                raise DataError(f"{where}: holds NaN or infinite values")
            widths[split] = x.shape[1]
        expected = fs.meta.get("dims", {}).get(layer, widths["train"])
        if widths["train"] != widths["test"] or widths["train"] != expected:
            raise DataError(f"{protocol}: layer {layer} of {features} has width {widths['train']} in train and "
                            f"{widths['test']} in test; features.json says {expected}")
    return fs, layers, labels, "multi_label" if fs.multi_label else "one_vs_rest"


def _labels(fs: FeatureSet, split: str, protocol: str) -> np.ndarray:
    y = np.asarray(fs.y(split))
    C, where = len(fs.classes), f"{protocol}: {fs.uri} {split}.labels.npy"
    if fs.multi_label:
        if y.ndim != 2 or y.shape[1] != C:
            raise DataError(f"{where}: shape {y.shape}, expected (images, {C}) for classes {fs.classes}")
        bad = np.setdiff1d(np.unique(y), [-1, 0, 1])
        if bad.size:
            raise DataError(f"{where}: values {bad.tolist()}; expected 1 (present), -1 (absent), 0 (difficult)")
        return y.astype(np.int8)
    if y.ndim != 1 or (y.size and (y.min() < 0 or y.max() >= C)):
        raise DataError(f"{where}: expected one class index in [0, {C}) per image, got shape {y.shape}")
    return np.where(y[:, None] == np.arange(C)[None], 1, -1).astype(np.int8)


def check_classes(fs: FeatureSet, labels: dict, protocol: str, need: dict, why: str,
                  need_absent: dict | None = None) -> None:
    """Every class needs `need[split]` present images (and `need_absent[split]` absent ones) per split."""
    for split, n in need.items():
        pos = (labels[split] == 1).sum(0)
        neg = (labels[split] == -1).sum(0)
        absent = (need_absent or {}).get(split, 1 if split == "train" else 0)
        for c, name in enumerate(fs.classes):
            if pos[c] < n or neg[c] < absent:
                raise DataError(f"{protocol}: class '{name}' has {pos[c]} present and {neg[c]} absent images in split "
                                f"'{split}' of {fs.uri}; {why}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ssl_lib.stages.svm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", required=True, help="features stage output")
    p.add_argument("--output", required=True)
    p.add_argument("--layers", nargs="+", default=None, help="default: every layer of the artifact")
    p.add_argument("--costs", type=float, nargs="+", default=None,
                   help="default: the seed's 19, 1 10 100 and 0.5**4 .. 0.5**19")
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when present)")
    return p


if __name__ == "__main__":
    sys.exit(run_cli(build_parser(), svm))
