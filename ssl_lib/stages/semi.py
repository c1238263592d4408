"""Stage `semi`: semi-supervised classification, the seed's protocol. For each labelled fraction of
the train split (1% and 10% by default), the backbone and a linear head are fine-tuned over a grid
of learning rates x head learning-rate multipliers; every setting's test top-1 / top-5 is reported,
and the best one per fraction (highest test top-1, as the seed picks its table's row).

The labelled images are those of a list file per fraction when given (`--subset-files
0.01=data/imagenet/meta/train_1percent.txt`, the seed's format: an image path first on each line),
else a seeded class-balanced subset. The schedule, grid and augmentation come from a config
(`semi = dict(...)`, plus optional `train_pipeline` / `test_pipeline`); the default is the CPU
config for Fashion-MNIST, trimmed to fit `make run` (see its comments); the seed's ImageNet recipes
are benchmarks/classification/imagenet/resnet50_semi_4xb64-steplr-20e_in1k-{1,10}pct.py.
Parameters given here override the config's (None, empty or 0: the config's); a different `epochs`
scales the step milestones (the CPU config's 5 epochs with [3, 4] give the seed's [12, 16] at 20).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

from .. import outlock, storage
from ..benchmarks.features import load_backbone
from ..benchmarks.semi import (LabelledImages, balanced_subset, default_pipelines, per_class_count, run_grid, split_names,
                               subset_from_list)
from ..config import load_config
from ..data import ParquetDataset, SingleViewDataset
from ..errors import ConfigError, DataError
from ._cli import require_gpus, run_cli

DEFAULT_CONFIG = "benchmarks/classification/fmnist/resnet18-w16_semi_1xb64-steplr-5e_fmnist.py"
REQUIRED = ("fractions", "lrs", "head_lr_mults", "epochs", "milestones", "gamma", "momentum", "weight_decay",
            "batch_size")


def fraction_key(fraction: float) -> str:
    return f"{float(fraction):g}"


def _settings(cfg, fractions, lrs, head_lr_mults, epochs, subset_files) -> dict:
    """The config's `semi` dict with the parameters given here (those not None, empty or 0) put over it, checked."""
    if "semi" not in cfg:
        raise ConfigError(f"semi: config {cfg.filename} has no `semi = dict(...)`")
    s = dict(cfg.semi.to_dict())
    missing = [key for key in REQUIRED if key not in s]
    if missing:
        raise ConfigError(f"semi: config {cfg.filename} lacks semi.{', semi.'.join(missing)}")
    s.setdefault("subset_files", None)
    s.setdefault("crop_scale", (0.08, 1.0))
    for key, value in dict(fractions=fractions, lrs=lrs, head_lr_mults=head_lr_mults, epochs=epochs,
                           subset_files=subset_files).items():
        if value:
            s[key] = value
    try:
        s["fractions"] = [float(f) for f in s["fractions"]]
        s["lrs"], s["head_lr_mults"] = [float(x) for x in s["lrs"]], [float(x) for x in s["head_lr_mults"]]
        s["epochs"], s["batch_size"] = int(s["epochs"]), int(s["batch_size"])
    except (TypeError, ValueError) as err:
        raise ConfigError(f"semi: fractions, lrs, head_lr_mults must be lists of numbers, epochs and batch_size "
                          f"integers: {err}") from err
    if not s["fractions"] or any(not 0 < f <= 1 for f in s["fractions"]):
        raise ConfigError(f"semi: fractions must be in (0, 1] (0.01 = 1%), got {s['fractions']}")
    if len({fraction_key(f) for f in s["fractions"]}) != len(s["fractions"]):
        raise ConfigError(f"semi: fractions repeat: {s['fractions']}")
    for key in ("lrs", "head_lr_mults"):
        if not s[key] or any(x <= 0 for x in s[key]):
            raise ConfigError(f"semi: {key} must be positive numbers, got {s[key]}")
    if s["epochs"] < 1 or s["batch_size"] < 1:
        raise ConfigError(f"semi: epochs ({s['epochs']}) and batch_size ({s['batch_size']}) must be at least 1")
    if epochs and int(epochs) != int(cfg.semi.epochs):
        scale = int(epochs) / int(cfg.semi.epochs)
        s["milestones"] = sorted({max(1, round(m * scale)) for m in cfg.semi.milestones})
    s["subset_files"] = _subset_files(s["subset_files"], s["fractions"])
    return s


def _subset_files(given, fractions: list[float]) -> dict[str, str]:
    """{fraction key: list file URI} from a dict or from `FRACTION=URI` strings (the CLI's form)."""
    if not given:
        return {}
    if isinstance(given, (list, tuple)):
        pairs = {}
        for item in given:
            fraction, sep, uri = str(item).partition("=")
            if not sep or not uri:
                raise ConfigError(f"semi: subset file {item!r} is not FRACTION=URI (e.g. 0.01=meta/train_1percent.txt)")
            pairs[fraction] = uri
        given = pairs
    out = {}
    for fraction, uri in dict(given).items():
        try:
            key = fraction_key(float(fraction))
        except ValueError:
            raise ConfigError(f"semi: subset file key {fraction!r} is not a fraction") from None
        if key not in {fraction_key(f) for f in fractions}:
            raise ConfigError(f"semi: a subset file is given for fraction {key}, which is not among the fractions "
                              f"{[fraction_key(f) for f in fractions]}")
        if uri:
            out[key] = str(uri)
    return out


@outlock.writes("output")
def semi(dataset: str, backbone: str, output: str, fractions: list[float] | None = None,
         lrs: list[float] | None = None, head_lr_mults: list[float] | None = None, epochs: int | None = None,
         subset_files: dict | list[str] | None = None, config: str = "", cfg_options: list[str] | None = None,
         seed: int = 0, gpus: int = 0, workers: int | None = None) -> dict:
    start = time.time()
    cfg = load_config(config or DEFAULT_CONFIG, cfg_options or [])
    s = _settings(cfg, fractions, lrs, head_lr_mults, epochs, subset_files)
    require_gpus("semi", gpus)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if workers is None:
        workers = min(8, os.cpu_count() or 1) if device.type == "cuda" else 0

    model, meta = load_backbone(backbone)
    source = ParquetDataset(dataset, "train")
    labels, classes = np.asarray(source.labels), list(source.classes)
    if labels.ndim != 1 or getattr(source, "multi_label", False):
        raise ConfigError(f"semi: dataset {dataset} is multi-label; the semi-supervised protocol fine-tunes a "
                          f"single-label classifier (use the svm or linear benchmarks for it)")
    if len(labels) == 0:
        raise DataError(f"semi: dataset {dataset} has an empty train split")
    train_pipeline, test_pipeline = default_pipelines(cfg.to_dict(), meta, s["crop_scale"], lambda: source.get_image(0))
    test_ds = SingleViewDataset(data_source=dict(type="ParquetShards", root=dataset, split="test"),
                                pipeline=test_pipeline)
    if len(test_ds) == 0:
        raise DataError(f"semi: dataset {dataset} has an empty test split")

    names = split_names(dataset, "train")
    subsets = {}
    for fraction in s["fractions"]:
        key = fraction_key(fraction)
        if key in s["subset_files"]:
            subsets[key] = (subset_from_list(names, s["subset_files"][key]), s["subset_files"][key])
        else:
            subsets[key] = (balanced_subset(labels, fraction, classes, seed), "balanced")
    if device.type == "cuda":  # the seed asks for --deterministic in this benchmark
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True

    schedule = {k: s[k] for k in ("epochs", "milestones", "gamma", "momentum", "weight_decay", "batch_size")}
    results = {}
    for key, (indices, origin) in subsets.items():
        print(f"semi {key}: {len(indices)} labelled images ({origin}), {len(s['lrs']) * len(s['head_lr_mults'])} "
              f"settings x {s['epochs']} epochs", flush=True)
        labelled = SingleViewDataset(data_source=LabelledImages(source, indices), pipeline=train_pipeline)
        grid = run_grid(model, labelled, test_ds, len(classes), lrs=s["lrs"], head_lr_mults=s["head_lr_mults"],
                        device=device, seed=seed, workers=workers, log=lambda line: print(line, flush=True),
                        tag=key, **schedule)
        best = max(grid, key=lambda row: (row["top1"], row["top5"]))  # the first of equals, in grid order
        results[key] = {"best": {k: best[k] for k in ("lr", "head_lr_mult", "top1", "top5")}, "grid": grid,
                        "num_labelled": int(len(indices)), "subset": origin}
        if origin == "balanced":
            results[key]["per_class"] = per_class_count(len(labels), len(classes), float(key))

    metrics = {"protocol": "semi", "fractions": results, "selected_by": "test top1 (as the seed's tables)",
               "lrs": s["lrs"], "head_lr_mults": s["head_lr_mults"], **schedule, "seed": seed,
               "num_train": len(labels), "num_test": len(test_ds), "backbone_sha256": meta.get("sha256"),
               "algorithm": meta.get("algorithm"), "config": config or DEFAULT_CONFIG,
               "seconds": round(time.time() - start, 1)}
    with storage.publish_dir(output) as staging:
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (staging / "subsets").mkdir()
        for key, (indices, _) in subsets.items():
            (staging / "subsets" / f"{key}.txt").write_text("".join(f"{names[i]} {labels[i]}\n" for i in indices))
    return metrics


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ssl_lib.stages.semi", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help="prepared dataset folder or s3:// URI")
    p.add_argument("--backbone", required=True, help="extract stage output (backbone.pth + backbone.json)")
    p.add_argument("--output", required=True)
    p.add_argument("--fractions", type=float, nargs="+", help="labelled fractions of train (default: the config's)")
    p.add_argument("--lrs", type=float, nargs="+", help="base learning rates (the seed's: 0.1 0.01 0.001)")
    p.add_argument("--head-lr-mults", type=float, nargs="+", help="head lr multipliers (the seed's: 1 10 100)")
    p.add_argument("--epochs", type=int, help="epochs per setting (default: the config's; milestones scale)")
    p.add_argument("--subset-files", nargs="*", metavar="FRACTION=URI",
                   help="list file of the labelled images for a fraction, e.g. 0.01=meta/train_1percent.txt")
    p.add_argument("--config", default="", help=f"semi config (default {DEFAULT_CONFIG})")
    p.add_argument("--cfg-options", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gpus", type=int, default=0, help="GPUs the step was given; fail early if fewer are visible")
    p.add_argument("--workers", type=int, default=None,
                   help="image-decoding processes (default: up to 8 on a GPU, none on a CPU)")
    return p


if __name__ == "__main__":
    sys.exit(run_cli(build_parser(), semi))
