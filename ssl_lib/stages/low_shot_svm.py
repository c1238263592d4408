"""Stage `low_shot_svm`: the seed's low-shot SVM protocol on the features artifact (stage `features`):
for k positives and (C - 1) x k absent images per class, 5 seeded samples, an SVM per cost; per k the
cost with the best mean test mAP over the samples (the seed's figure, mean and std) and, beside it,
the mAP with the cost chosen by cross-validation on each training sample alone (never on test; with
k = 1 no fold can hold a positive out and the first cost is taken). The best layer is the one with the
highest seed's figure averaged over the k's."""
from __future__ import annotations

import argparse
import json
import sys
import time

from .. import outlock, storage
from ..benchmarks.svm import LOW_SHOT_KS, SEED_COSTS, SolverStats, low_shot_svm_voc07
from ..errors import ConfigError
from ._cli import run_cli
from .svm import check_classes, read_voc_features


@outlock.writes("output")
def low_shot_svm(features: str, output: str, layers: list[str] | None = None, ks: list[int] | None = None,
                 samples: int = 5, costs: list[float] | None = None, seed: int = 0, folds: int = 3,
                 device: str | None = None) -> dict:
    ks = sorted({int(k) for k in (ks or LOW_SHOT_KS)})
    costs = [float(c) for c in (costs or SEED_COSTS)]
    if not ks or ks[0] < 1:
        raise ConfigError(f"low_shot_svm: ks must be positive integers, got {ks}")
    if samples < 1:
        raise ConfigError(f"low_shot_svm: samples must be at least 1, got {samples}")
    if any(c <= 0 for c in costs):
        raise ConfigError(f"low_shot_svm: costs must be positive, got {costs}")
    if folds < 2:
        raise ConfigError(f"low_shot_svm: folds must be at least 2, got {folds}")
    fs, layers, labels, reading = read_voc_features(features, layers, "low_shot_svm")
    k, C = ks[-1], len(fs.classes)
    check_classes(fs, labels, "low_shot_svm", {"train": k, "test": 1},
                  why=f"k={k} draws {k} present and {(C - 1) * k} absent train images per class, and the test AP "
                      f"needs one present test image (lower --ks)", need_absent={"train": (C - 1) * k})
    start, results, stats = time.time(), {}, SolverStats()
    for layer in layers:
        t = time.time()
        out = low_shot_svm_voc07(fs.x("train", layer), labels["train"], fs.x("test", layer), labels["test"],
                                 ks=ks, samples=samples, costs=costs, seed=seed, folds=folds, device=device,
                                 stats=stats)
        results[layer] = {"best_cost": {str(k): v["best_cost"] for k, v in out.items()},
                          "cv_cost": {str(k): v["cv_cost"] for k, v in out.items()}}
        print(f"low_shot_svm {layer:8s} " + "  ".join(f"k={k}: {100 * v['best_cost']['mean']:.2f}"
                                                      for k, v in out.items()) + f"  ({time.time() - t:.1f}s)",
              flush=True)
    mean_map = {layer: sum(v["mean"] for v in r["best_cost"].values()) / len(ks) for layer, r in results.items()}
    metrics = {"protocol": "low_shot_svm", "ks": ks, "samples": samples, "layers": results,
               "best_layer": max(mean_map, key=mean_map.get), "costs": costs, "seed": seed, "folds": folds,
               "labels": reading, "num_train": fs.splits["train"], "num_test": fs.splits["test"],
               "solver": vars(stats), "seconds": round(time.time() - start, 1)}
    with storage.publish_dir(output) as staging:
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ssl_lib.stages.low_shot_svm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", required=True, help="features stage output")
    p.add_argument("--output", required=True)
    p.add_argument("--layers", nargs="+", default=None, help="default: every layer of the artifact")
    p.add_argument("--ks", type=int, nargs="+", default=None, help="default: the seed's 1 2 4 8 16 32 64 96")
    p.add_argument("--samples", type=int, default=5)
    p.add_argument("--costs", type=float, nargs="+", default=None,
                   help="default: the seed's 19, 1 10 100 and 0.5**4 .. 0.5**19")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--folds", type=int, default=3, help="cross-validation folds of the cv_cost figure")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when present)")
    return p


if __name__ == "__main__":
    sys.exit(run_cli(build_parser(), low_shot_svm))
