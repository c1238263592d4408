"""Stage `knn`: weighted kNN top-1/top-5 of a frozen backbone on a prepared dataset's train/test
splits, with two baselines computed the same way: the same backbone at random initialisation,
and raw pixels."""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from .. import storage
from ..benchmarks.features import (RAW_PIXELS_MAX_SIDE, build_backbone, eval_dataset, extract_features,
                                   load_backbone, load_backbone_meta)
from ..benchmarks.knn import knn_classify
from ..errors import ConfigError
from ._cli import run_cli


def knn(dataset: str, backbone: str, output: str, ks: list[int] | None = None, temperature: float = 0.07,
        baselines: bool = True, batch_size: int = 256, workers: int | None = None, gpus: int = 0) -> dict:
    ks = sorted(int(k) for k in (ks or [10, 20, 100, 200]))
    if not ks or ks[0] <= 0:
        raise ConfigError(f"knn: ks must be positive integers, got {ks}")
    if gpus and torch.cuda.device_count() < gpus:
        raise ConfigError(f"knn: {gpus} GPU(s) requested but {torch.cuda.device_count()} visible "
                          f"(is the step on a GPU node, in the CUDA image?)")
    meta = load_backbone_meta(backbone)
    pipeline = meta.get("eval_pipeline")
    train_ds, test_ds = eval_dataset(dataset, "train", pipeline), eval_dataset(dataset, "test", pipeline)
    num_classes = len(train_ds.data_source.classes)

    models = {"pretrained": load_backbone(backbone)[0]}
    if baselines:
        models["random_init"] = build_backbone(meta["backbone"], None, seed=0)
        models["raw_pixels"] = None
    results, features = {}, {}
    for name, model in models.items():
        train_f, train_y = extract_features(model, train_ds, batch_size=batch_size, desc=f"{name} train",
                                            num_workers=workers)
        test_f, test_y = extract_features(model, test_ds, batch_size=batch_size, desc=f"{name} test",
                                          num_workers=workers)
        results[name] = knn_classify(train_f["avgpool"], train_y, test_f["avgpool"], test_y, ks, temperature,
                                     num_classes)
        features[name] = (train_f["avgpool"], train_y, test_f["avgpool"], test_y)
        print(f"knn {name:12s} " + "  ".join(f"k={k}: {results[name]['top1'][k]:.4f}" for k in ks), flush=True)

    metrics = {"ks": ks, "temperature": temperature, "num_train": len(train_ds), "num_test": len(test_ds),
               "backbone_sha256": meta["sha256"], "algorithm": meta["algorithm"], "epoch": meta["epoch"],
               "raw_pixels_max_side": RAW_PIXELS_MAX_SIDE, "results": results}
    if "random_init" in results:
        k = 20 if 20 in ks else ks[0]
        metrics["margin_over_random_init"] = {
            "k": k, "top1": results["pretrained"]["top1"][k] - results["random_init"]["top1"][k]}
    with storage.publish_dir(output) as staging:
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
        train_f, train_y, test_f, test_y = features["pretrained"]
        np.savez(staging / "features_avgpool.npz", train=train_f, train_labels=train_y, test=test_f,
                 test_labels=test_y)
    return metrics


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ssl_lib.stages.knn", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help="prepared dataset folder or s3:// URI")
    p.add_argument("--backbone", required=True, help="extract stage output (backbone.pth + backbone.json)")
    p.add_argument("--output", required=True)
    p.add_argument("--ks", type=int, nargs="+", default=[10, 20, 100, 200])
    p.add_argument("--temperature", type=float, default=0.07)
    p.add_argument("--no-baselines", dest="baselines", action="store_false")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--gpus", type=int, default=0, help="GPUs the step was given; fail early if fewer are visible")
    p.add_argument("--workers", type=int, default=None,
                   help="image-decoding processes (default: up to 8 on a GPU, none on a CPU)")
    return p


if __name__ == "__main__":
    sys.exit(run_cli(build_parser(), knn))
