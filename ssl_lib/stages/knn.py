"""Stage `knn`: weighted kNN top-1/top-5 on the features artifact (stage `features`): the
pretrained backbone's features of one layer, and, where the artifact holds them, the two baselines
computed the same way: the same backbone at random initialisation, and raw pixels."""
from __future__ import annotations

import argparse
import json
import sys
import time

from .. import outlock, storage
from ..benchmarks.features import load_feature_set
from ..benchmarks.knn import knn_classify
from ..errors import ConfigError, DataError
from ._cli import require_gpus, run_cli


@outlock.writes("output")
def knn(features: str, output: str, ks: list[int] | None = None, temperature: float = 0.07,
        layer: str = "avgpool", gpus: int = 0) -> dict:
    ks = sorted(int(k) for k in (ks or [10, 20, 100, 200]))
    if not ks or ks[0] <= 0:
        raise ConfigError(f"knn: ks must be positive integers, got {ks}")
    if temperature <= 0:
        raise ConfigError(f"knn: temperature must be positive, got {temperature}")
    require_gpus("knn", gpus)
    fs = load_feature_set(features)
    if fs.multi_label:
        raise DataError(f"knn: {features} holds a multi-label dataset ({fs.meta.get('dataset')}); kNN votes for one "
                        f"class per image (use the svm protocols)")
    if layer not in fs.layers:
        raise ConfigError(f"knn: layer '{layer}' is not in {features} (it has {fs.layers})")
    for split in ("train", "test"):
        if not fs.splits.get(split):
            raise DataError(f"knn: split '{split}' of {features} is empty")
    start, num_classes = time.time(), len(fs.classes)
    results = {}
    for model in fs.models:
        if model != "pretrained" and layer != "avgpool":
            continue  # the baselines are kept for avgpool only
        results[model] = knn_classify(fs.x("train", layer, model), fs.y("train"), fs.x("test", layer, model),
                                      fs.y("test"), ks, temperature, num_classes)
        print(f"knn {model:12s} " + "  ".join(f"k={k}: {results[model]['top1'][k]:.4f}" for k in ks), flush=True)

    meta = fs.meta
    metrics = {"protocol": "knn", "ks": ks, "temperature": temperature, "layer": layer,
               "num_train": fs.splits["train"], "num_test": fs.splits["test"],
               "backbone_sha256": meta["backbone_sha256"], "algorithm": meta["algorithm"], "epoch": meta.get("epoch"),
               "raw_pixels_max_side": meta.get("raw_pixels_max_side"), "results": results,
               "seconds": round(time.time() - start, 1)}
    if "random_init" in results:
        k = 20 if 20 in ks else ks[0]
        metrics["margin_over_random_init"] = {
            "k": k, "top1": results["pretrained"]["top1"][k] - results["random_init"]["top1"][k]}
    with storage.publish_dir(output) as staging:
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ssl_lib.stages.knn", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", required=True, help="features stage output")
    p.add_argument("--output", required=True)
    p.add_argument("--ks", type=int, nargs="+", default=[10, 20, 100, 200])
    p.add_argument("--temperature", type=float, default=0.07)
    p.add_argument("--layer", default="avgpool", help="feat1..feat5 or avgpool")
    p.add_argument("--gpus", type=int, default=0, help="GPUs the step was given; fail early if fewer are visible")
    return p


if __name__ == "__main__":
    sys.exit(run_cli(build_parser(), knn))
