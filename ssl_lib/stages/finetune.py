"""Stage `finetune`: full fine-tuning, the protocol of the seed's masked-image-modelling algorithms (MAE,
SimMIM, CAE): the backbone and a linear head trained on the train split with the seed's fine-tuning
recipe (AdamW, layer-wise lr decay, warm-up + cosine, drop path, Mixup / CutMix, label smoothing),
then top-1 / top-5 on the test split. With `baseline`, the same architecture from a seeded random
init goes through the same recipe beside it.

The recipe is a config in the seed's layout (`model.backbone` overrides such as drop_path_rate,
`model.head`, `train_pipeline` / `test_pipeline`, `data.samples_per_gpu`, `train_cfg.augments`,
`optimizer`, `optimizer_config`, `lr_config`, `runner.max_epochs`). Without one, the CPU recipe for the
backbone's kind is used (ViT, Swin or ResNet, under benchmarks/classification/fmnist/); the seed's
ImageNet recipes are benchmarks/classification/imagenet/{vit-base-p16,swin-base}_ft-*.py.
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
from ..benchmarks import finetune as ft
from ..benchmarks.features import build_backbone, is_swin, is_vit, load_backbone
from ..benchmarks.semi import LabelledImages, balanced_subset, default_pipelines
from ..config import load_config
from ..data import ParquetDataset, SingleViewDataset
from ..errors import ConfigError, DataError
from ._cli import require_gpus, run_cli

VIT_CONFIG = "benchmarks/classification/fmnist/vit_ft-1xb64-coslr-10e_fmnist.py"
SWIN_CONFIG = "benchmarks/classification/fmnist/swin_ft-1xb64-coslr-10e_fmnist.py"
CNN_CONFIG = "benchmarks/classification/fmnist/resnet_ft-1xb64-coslr-10e_fmnist.py"
REQUIRED = ("optimizer", "lr_config", "runner", "data")


def default_config(backbone_cfg: dict) -> str:
    return VIT_CONFIG if is_vit(backbone_cfg) else SWIN_CONFIG if is_swin(backbone_cfg) else CNN_CONFIG


def _recipe(cfg, epochs: int | None) -> dict:
    missing = [key for key in REQUIRED if key not in cfg]
    if missing:
        raise ConfigError(f"finetune: config {cfg.filename} lacks {', '.join(missing)}")
    max_epochs = int(epochs or cfg.runner.get("max_epochs", 0))
    batch = int(cfg.data.get("samples_per_gpu", 0))
    if max_epochs < 1 or batch < 1:
        raise ConfigError(f"finetune: runner.max_epochs ({max_epochs}) and data.samples_per_gpu ({batch}) "
                          f"must be at least 1")
    return dict(optimizer_cfg=cfg.optimizer.to_dict(), lr_config=cfg.lr_config.to_dict(), epochs=max_epochs,
                batch_size=batch, augments=list(cfg.get("train_cfg", {}).get("augments", []) or []),
                optimizer_config=dict(cfg.get("optimizer_config") or {}),
                fp16=cfg.fp16.to_dict() if cfg.get("fp16") else None)


@outlock.writes("output")
def finetune(dataset: str, backbone: str, output: str, config: str = "", cfg_options: list[str] | None = None,
             epochs: int | None = None, train_limit: int = 0, baseline: bool = False, seed: int = 0, gpus: int = 0,
             workers: int | None = None) -> dict:
    start = time.time()
    require_gpus("finetune", gpus)
    model, meta = load_backbone(backbone)
    config = config or default_config(meta["backbone"])
    cfg = load_config(config, cfg_options or [])
    recipe = _recipe(cfg, epochs)
    model_cfg = cfg.get("model", {})
    overrides = dict(model_cfg.get("backbone", {}) or {})
    head = dict(model_cfg.get("head", {}) or {})
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if workers is None:
        workers = min(8, os.cpu_count() or 1) if device.type == "cuda" else 0

    source = ParquetDataset(dataset, "train")
    labels, classes = np.asarray(source.labels), list(source.classes)
    if labels.ndim != 1 or getattr(source, "multi_label", False):
        raise ConfigError(f"finetune: dataset {dataset} is multi-label; fine-tuning trains a single-label classifier")
    if len(labels) == 0:
        raise DataError(f"finetune: dataset {dataset} has an empty train split")
    if train_limit and train_limit < len(labels):
        indices, subset = balanced_subset(labels, train_limit / len(labels), classes, seed), "balanced"
    else:
        indices, subset = np.arange(len(labels)), "all"
    train_pipeline, test_pipeline = default_pipelines(cfg.to_dict(), meta, cfg.get("crop_scale", (0.08, 1.0)), lambda: source.get_image(0))
    test_ds = SingleViewDataset(data_source=dict(type="ParquetShards", root=dataset, split="test"),
                                pipeline=test_pipeline)
    if len(test_ds) == 0:
        raise DataError(f"finetune: dataset {dataset} has an empty test split")
    try:  # the pretrained weights in the architecture the recipe asks for (drop path, ...)
        arch = dict(meta["backbone"], **overrides)
        model = build_backbone(arch, model.state_dict())
    except (TypeError, ConfigError) as err:
        raise ConfigError(f"finetune: model.backbone overrides {overrides} do not fit the {arch.get('type')} "
                          f"backbone: {err}") from err
    train_ds = SingleViewDataset(data_source=LabelledImages(source, indices), pipeline=train_pipeline)
    print(f"finetune: {len(train_ds)} train images ({subset}), {len(test_ds)} test, {recipe['epochs']} epochs, "
          f"config {config}", flush=True)
    log = lambda line: print(line, flush=True)  # noqa: E731
    common = dict(head=head, device=device, seed=seed, workers=workers, log=log)
    result = ft.run(model, train_ds, test_ds, len(classes), tag="pretrained", **common, **dict(recipe))
    base = None
    if baseline:
        base = ft.run(build_backbone(arch, None, seed), train_ds, test_ds, len(classes), tag="random init",
                      **common, **dict(recipe))

    metrics = {"protocol": "finetune", "top1": result["top1"], "top5": result["top5"], "pretrained": result,
               "baseline": base, "epochs": recipe["epochs"], "batch_size": recipe["batch_size"],
               "optimizer": recipe["optimizer_cfg"], "augments": recipe["augments"],
               "label_smooth_val": head.get("label_smooth_val", 0.0), "backbone_overrides": overrides,
               "num_train": int(len(train_ds)), "train_subset": subset, "num_test": len(test_ds), "seed": seed,
               "backbone_sha256": meta.get("sha256"), "algorithm": meta.get("algorithm"), "config": config,
               "seconds": round(time.time() - start, 1)}
    with storage.publish_dir(output) as staging:
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ssl_lib.stages.finetune", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help="prepared dataset folder or s3:// URI")
    p.add_argument("--backbone", required=True, help="extract stage output (backbone.pth + backbone.json)")
    p.add_argument("--output", required=True)
    p.add_argument("--config", default="", help="fine-tuning recipe (default: the CPU recipe for the backbone's kind)")
    p.add_argument("--cfg-options", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--epochs", type=int, default=None, help="override runner.max_epochs (0 or none: the config's)")
    p.add_argument("--train-limit", type=int, default=0, help="fine-tune on a class-balanced subset of this size")
    p.add_argument("--baseline", action="store_true", help="also fine-tune the same backbone from random init")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gpus", type=int, default=0, help="GPUs the step was given; fail early if fewer are visible")
    p.add_argument("--workers", type=int, default=None,
                   help="image-decoding processes (default: up to 8 on a GPU, none on a CPU)")
    return p


if __name__ == "__main__":
    sys.exit(run_cli(build_parser(), finetune))
