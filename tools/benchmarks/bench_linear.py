"""The fast linear protocol (features once, then every layer x lr x weight decay at once on the cached
arrays) against the seed's per-epoch linear protocol (heads on the frozen backbone, images augmented
and through the backbone every epoch), on the same backbone and Fashion-MNIST images: wall time of
each, their ratio, and top-1 per layer. Ends with one JSON line holding every figure printed.

    python tools/benchmarks/bench_linear.py [--backbone EXTRACT_OUTPUT] [--train 2000] [--test 1000]

Without --backbone the backbone is make run's default recipe's (Rotation Prediction, ResNet-18 w16)
at a seeded random init: the protocols are timed the same either way. The per-epoch protocol runs
the linear stage's default (trimmed) config; the fast one sweeps its default 5 lrs x 4 weight decays.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from ssl_lib.config import load_config
from ssl_lib.models import build_algorithm
from ssl_lib.stages.extract import extract
from ssl_lib.stages.fast_linear import fast_linear
from ssl_lib.stages.features import features
from ssl_lib.stages.linear import DEFAULT_CONFIG, linear
from ssl_lib.stages.prep import prep

RECIPE = "selfsup/rotation_pred/rotation-pred_resnet18-w16_1xb64-steplr-3e_fmnist.py"


def _random_init_backbone(root: Path) -> str:
    torch.manual_seed(0)
    model = build_algorithm(load_config(RECIPE).model)
    torch.save({"state_dict": model.state_dict()}, root / "model.pth")
    extract(str(root / "model.pth"), str(root / "backbone"), config=RECIPE)
    return str(root / "backbone")


def _timed(fn, **kwargs) -> tuple[dict, float]:
    start = time.perf_counter()
    out = fn(**kwargs)
    return out, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="",
                   help="an extract stage output (default: random init of the default recipe)")
    p.add_argument("--train", type=int, default=2000, help="Fashion-MNIST train images")
    p.add_argument("--test", type=int, default=1000, help="Fashion-MNIST test images")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-linear-") as tmp:
        root = Path(tmp)
        dataset = str(root / "dataset")
        prep(source="fashion-mnist", output=dataset, train_limit=args.train, test_limit=args.test)
        backbone = args.backbone or _random_init_backbone(root)

        per_epoch, t_linear = _timed(linear, dataset=dataset, backbone=backbone, output=str(root / "linear"),
                                     cfg_options=["data.train_limit=0"])
        feats, t_features = _timed(features, dataset=dataset, backbone=backbone, output=str(root / "features"),
                                   baselines=False)
        fast, t_fast = _timed(fast_linear, features=str(root / "features"), output=str(root / "fast_linear"))

    layers = list(per_epoch["heads"])
    settings = len(fast["sweep"])
    print(f"\n{args.train} train / {args.test} test Fashion-MNIST images, backbone "
          f"{args.backbone or 'random init of ' + RECIPE}, {torch.get_num_threads()} threads")
    print(f"per-epoch linear ({DEFAULT_CONFIG}, {per_epoch['epochs']} epochs, {len(layers)} heads, 1 setting): "
          f"{t_linear:.1f} s")
    print(f"fast linear: features {t_features:.1f} s + sweep {t_fast:.1f} s ({settings} heads: "
          f"{len(fast['per_layer'])} layers x {len(fast['lrs'])} lrs x {len(fast['weight_decays'])} weight decays, "
          f"{fast['epochs']} epochs)")
    print(f"time ratio per-epoch / fast: {t_linear / (t_features + t_fast):.1f}x with the feature pass, "
          f"{t_linear / t_fast:.1f}x on cached features")
    print(f"{'layer':8s} {'per-epoch top-1':>16s} {'fast top-1':>11s}  fast setting (lr, wd)")
    for layer in layers:
        row = fast["per_layer"].get(layer)
        fast_top1 = (f"{100 * row['test_top1']:11.2f}  ({row['lr']:g}, {row['weight_decay']:g})" if row
                     else f"{'-':>11s}")
        print(f"{layer:8s} {100 * per_epoch['heads'][layer]['top1']:16.2f} {fast_top1}")
    best = per_epoch["best_layer"]
    chosen = fast["chosen"]
    print(f"best: per-epoch {best} {100 * per_epoch['heads'][best]['top1']:.2f}, fast {chosen['layer']} "
          f"{100 * chosen['test_top1']:.2f} (chosen on the held-out 10% of train)")
    print(json.dumps({
        "bench": "linear", "num_train": args.train, "num_test": args.test, "threads": torch.get_num_threads(),
        "backbone": args.backbone or f"random init: {RECIPE}", "linear_config": DEFAULT_CONFIG,
        "linear_epochs": per_epoch["epochs"], "linear_seconds": round(t_linear, 2),
        "features_seconds": round(t_features, 2), "fast_linear_seconds": round(t_fast, 2), "fast_settings": settings,
        "time_ratio": round(t_linear / (t_features + t_fast), 2), "time_ratio_cached": round(t_linear / t_fast, 2),
        "linear_top1": {n: round(h["top1"], 4) for n, h in per_epoch["heads"].items()},
        "linear_best": {"layer": best, "top1": round(per_epoch["heads"][best]["top1"], 4)},
        "fast_top1": {n: round(r["test_top1"], 4) for n, r in fast["per_layer"].items()},
        "fast_chosen": {k: chosen[k] for k in ("layer", "lr", "weight_decay", "val_top1", "test_top1", "test_top5")},
    }))


if __name__ == "__main__":
    main()
