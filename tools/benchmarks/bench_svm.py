"""The SVM protocols, ours against the seed's sklearn path, on the same synthetic features.

    python tools/benchmarks/bench_svm.py           # VOC07 size: 20 classes, 5011 train / 4952 test,
                                                   # one 2048-dim and one 9216-dim layer
    python tools/benchmarks/bench_svm.py --quick   # 1000 / 1000 images, 256 and 1024 dims

The reference is the seed's train_svm_kfold_parallel + test_svm (and train/test_svm_low_shot): one
sklearn LinearSVC per class and cost (3-fold cross_val_score, then the chosen cost refit), in a process
pool of os.cpu_count() workers. `--reference-classes N` runs it on the first N classes only and scales
its time by 20 / N (each class is independent work; by default all 20, and 5 for layers over 4096
dims, where one sklearn fit takes seconds); the mAPs are then compared on those classes.
The low-shot reference fits every class x cost x sample for the k's of `--low-shot-reference-ks` (the
seed's best-cost figure; the CV-chosen figure is ours alone). Wall times, ratios and mAPs are printed,
and the last line is one JSON object with every figure.

Synthetic features: VOC07 trainval's per-class image counts (so its positive rates), about 8 % of the
positive entries marked difficult (and shown weaker), ReLU(class directions + a decaying low-rank
nuisance + noise + an offset), like pooled CNN features.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from ssl_lib.benchmarks.svm import (LOW_SHOT_KS, SEED_COSTS, SolverStats, low_shot_svm_voc07,  # noqa: E402
                                    normalize_rows, sample_low_shot, train_svm_voc07, voc_ap)

VOC07_TRAINVAL_IMAGES = [238, 243, 330, 181, 244, 186, 713, 337, 445, 141, 200, 421, 287, 245, 2008, 245, 96, 229,
                         261, 256]


def synthetic_voc(n_train: int, n_test: int, dims: list[int], classes: int = 20, signal: float = 0.5,
                  latent: int = 64, seed: int = 0):
    """Labels with VOC07 trainval's image count per class (scaled to the split sizes) and about 8 % more
    images per class where it is difficult only (0). Features: ReLU of a `latent`-dim code (the sum of
    the present classes' embeddings, weaker when difficult, plus unit noise) mapped to `dim` dims, plus
    small isotropic noise and an offset: low intrinsic dimension and non-negative, like pooled CNN
    features."""
    rng = np.random.default_rng(seed)
    counts = np.resize(VOC07_TRAINVAL_IMAGES, classes)
    labels, strength = [], []
    for size in (n_train, n_test):
        lab = np.full((size, classes), -1, dtype=np.int8)
        for c, count in enumerate(counts):
            rows = rng.permutation(size)
            pos, hard = int(round(count * size / 5011)), int(round(0.08 * count * size / 5011))
            lab[rows[:pos], c] = 1
            lab[rows[pos:pos + hard], c] = 0
        labels.append(lab)
        strength.append(np.where(lab == 1, 1.0, np.where(lab == 0, 0.4, 0.0)).astype(np.float32))
    n = n_train + n_test
    embed = signal * rng.standard_normal((classes, latent), dtype=np.float32)
    code = np.concatenate(strength) @ embed + rng.standard_normal((n, latent), dtype=np.float32)
    layers = {}
    for dim in dims:
        basis = rng.standard_normal((latent, dim), dtype=np.float32) / np.sqrt(latent)
        x = code @ basis + 0.3 * rng.standard_normal((n, dim), dtype=np.float32) + 0.5
        layers[dim] = np.maximum(x, 0)
    return {d: (x[:n_train], x[n_train:]) for d, x in layers.items()}, labels[0], labels[1]


# ------------------------------------------------------------------------------- the seed's sklearn path

_shared: dict = {}


def _init(xtr, ytr, xte, yte):
    _shared.update(xtr=xtr, ytr=ytr, xte=xte, yte=yte)


def _linear_svc(cost):
    from sklearn.svm import LinearSVC

    return LinearSVC(C=cost, class_weight={1: 2, -1: 1}, intercept_scaling=1.0, verbose=0, penalty="l2",
                     loss="squared_hinge", tol=0.0001, dual=True, max_iter=2000)


def _cv_task(args):
    from sklearn.model_selection import cross_val_score

    cls, cost = args
    y = np.where(_shared["ytr"][:, cls] == 1, 1, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cross_val_score(_linear_svc(cost), _shared["xtr"], y, cv=3, scoring="average_precision").mean()


def _test_task(args):
    cls, cost = args
    y = np.where(_shared["ytr"][:, cls] == 1, 1, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = _linear_svc(cost).fit(_shared["xtr"], y)
    return voc_ap(clf.decision_function(_shared["xte"]), _shared["yte"][:, cls])


def _low_shot_task(args):
    k, sample, cls = args
    rows = sample_low_shot(_shared["ytr"], k, sample, seed=0)[cls]
    y = np.where(_shared["ytr"][rows, cls] == 1, 1, -1)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cost in SEED_COSTS:
            clf = _linear_svc(cost).fit(_shared["xtr"][rows], y)
            out.append(voc_ap(clf.decision_function(_shared["xte"]), _shared["yte"][:, cls]))
    return out


def _pool(xtr, ytr, xte, yte):
    xtr = normalize_rows(xtr.astype(np.float64))  # svm_helper.load_input_data + normalize_features
    xte = normalize_rows(xte.astype(np.float64))
    return mp.get_context("fork").Pool(os.cpu_count(), initializer=_init, initargs=(xtr, ytr, xte, yte))


def sklearn_svm(xtr, ytr, xte, yte, classes: list[int]) -> dict:
    start = time.perf_counter()
    with _pool(xtr, ytr, xte, yte) as pool:
        cv = pool.map(_cv_task, [(c, cost) for c in classes for cost in SEED_COSTS], chunksize=1)
        cv = np.asarray(cv).reshape(len(classes), len(SEED_COSTS))
        chosen = [SEED_COSTS[i] for i in cv.argmax(1)]
        ap = pool.map(_test_task, list(zip(classes, chosen)), chunksize=1)
    return {"seconds": time.perf_counter() - start, "ap": np.asarray(ap), "cost": chosen, "cv_ap": cv}


def sklearn_low_shot(xtr, ytr, xte, yte, ks: list[int], samples: int) -> dict:
    start, C = time.perf_counter(), ytr.shape[1]
    with _pool(xtr, ytr, xte, yte) as pool:
        tasks = [(k, s, c) for k in ks for s in range(samples) for c in range(C)]
        ap = np.asarray(pool.map(_low_shot_task, tasks, chunksize=1)).reshape(len(ks), samples, C, len(SEED_COSTS))
    sample_map = ap.mean(2)                                                    # (ks, samples, costs)
    best = sample_map.mean(1).argmax(1)
    return {"seconds": time.perf_counter() - start,
            "best_cost": {k: float(sample_map[i, :, best[i]].mean()) for i, k in enumerate(ks)}}


# ------------------------------------------------------------------------------------------------- main

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1000 / 1000 images, 256 and 1024 dims")
    p.add_argument("--dims", type=int, nargs="+", default=None)
    p.add_argument("--reference-classes", type=int, default=20,
                   help="run the sklearn SVM reference on this many classes and scale its time (default: all 20)")
    p.add_argument("--reference-classes-wide", type=int, default=5,
                   help="the same for layers over 4096 dims, where each sklearn fit takes seconds (default: 5)")
    p.add_argument("--low-shot-reference-ks", type=int, nargs="*", default=None,
                   help="k's the sklearn low-shot reference runs (default: 1 8 96; --quick: 1 4)")
    p.add_argument("--samples", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3,
                   help="runs of our SVM protocol per layer; its time is their median (this machine's speed drifts; "
                        "the reference's time is already a sum over 1,160 fits)")
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    n_train, n_test = (1000, 1000) if args.quick else (5011, 4952)
    dims = args.dims or ([256, 1024] if args.quick else [2048, 9216])
    ref_ks = args.low_shot_reference_ks if args.low_shot_reference_ks is not None else \
        ([1, 4] if args.quick else [1, 8, 96])
    ks = [k for k in LOW_SHOT_KS if k * 20 <= n_train // 2]
    report = {"n_train": n_train, "n_test": n_test, "classes": 20, "cpus": os.cpu_count(),
              "torch_threads": torch.get_num_threads(), "load_average_start": os.getloadavg()[0], "svm": {}}
    print(f"synthetic VOC07-like features: {n_train} train / {n_test} test images, 20 classes, dims {dims}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    feats, ytr, yte = synthetic_voc(n_train, n_test, dims)
    for dim in dims:
        xtr, xte = feats[dim]
        runs = []
        for _ in range(max(args.repeats, 1)):
            stats = SolverStats()
            start = time.perf_counter()
            ours = train_svm_voc07(xtr, ytr, xte, yte, device=args.device, stats=stats)
            runs.append(time.perf_counter() - start)
        ours_s = float(np.median(runs))
        n_ref = min(args.reference_classes_wide if dim > 4096 else args.reference_classes, 20)
        ref = sklearn_svm(xtr, ytr, xte, yte, list(range(n_ref)))
        ref_s = ref["seconds"] * 20 / n_ref
        ours_map, ref_map = float(ours["ap"][:n_ref].mean()), float(ref["ap"].mean())
        row = {"ours_s": round(ours_s, 2), "ours_runs_s": [round(r, 2) for r in runs], "sklearn_s": round(ref_s, 1), "ratio": round(ref_s / ours_s, 1),
               "ours_mAP": round(100 * float(ours["mAP"]), 2), "ours_mAP_compared": round(100 * ours_map, 2),
               "sklearn_mAP": round(100 * ref_map, 2), "mAP_diff_points": round(100 * abs(ours_map - ref_map), 3),
               "max_class_ap_diff_points": round(100 * float(np.abs(ours["ap"][:n_ref] - ref["ap"]).max()), 3),
               "same_cost_classes": int(sum(a == b for a, b in zip(ours["cost"], ref["cost"]))),
               "reference_classes": n_ref, "solver": vars(stats)}
        report["svm"][str(dim)] = row
        scaled = f" (measured on {n_ref} classes, x{20 / n_ref:g})" if n_ref < 20 else ""
        print(f"svm {dim:5d} dims: ours {ours_s:7.2f}s (median of {len(runs)})  sklearn {ref_s:7.1f}s{scaled}  ratio {row['ratio']:6.1f}x  "
              f"mAP ours {row['ours_mAP_compared']:.2f} sklearn {row['sklearn_mAP']:.2f} "
              f"(diff {row['mAP_diff_points']:.3f} points, same cost in {row['same_cost_classes']}/{n_ref} classes)",
              flush=True)

    dim = dims[0]
    xtr, xte = feats[dim]
    ours_low, ours_k_s = {}, {}
    for k in ks:  # one k at a time for its wall time (each call computes the Gram matrix again)
        start = time.perf_counter()
        ours_low.update(low_shot_svm_voc07(xtr, ytr, xte, yte, ks=[k], samples=args.samples, device=args.device))
        ours_k_s[k] = time.perf_counter() - start
    ours_all_s = sum(ours_k_s.values())
    low = {"dim": dim, "ks": ks, "samples": args.samples, "ours_all_ks_s": round(ours_all_s, 2),
           "ours_s_per_k": {str(k): round(v, 2) for k, v in ours_k_s.items()},
           "per_k": {str(k): {"best_cost": round(100 * v["best_cost"]["mean"], 2),
                              "std": round(100 * v["best_cost"]["std"], 2),
                              "cv_cost": round(100 * v["cv_cost"]["mean"], 2)} for k, v in ours_low.items()}}
    print(f"low-shot {dim} dims, k {ks}: ours {ours_all_s:.2f}s  mAP best cost (cv cost): " + "  ".join(
        f"k={k}: {v['best_cost']} ({v['cv_cost']})" for k, v in low["per_k"].items()), flush=True)
    ref_ks = [k for k in ref_ks if k in ks]
    if ref_ks:
        ref = sklearn_low_shot(xtr, ytr, xte, yte, ref_ks, args.samples)
        ours_ref_s = sum(ours_k_s[k] for k in ref_ks)
        diffs = {str(k): round(100 * abs(ours_low[k]["best_cost"]["mean"] - ref["best_cost"][k]), 3) for k in ref_ks}
        low.update(reference_ks=ref_ks, ours_reference_ks_s=round(ours_ref_s, 2), sklearn_s=round(ref["seconds"], 1),
                   ratio=round(ref["seconds"] / ours_ref_s, 1), mAP_diff_points=diffs,
                   sklearn_best_cost={str(k): round(100 * v, 2) for k, v in ref["best_cost"].items()})
        print(f"low-shot {dim} dims, k {ref_ks} (the reference's k's): ours {ours_ref_s:.2f}s  sklearn "
              f"{ref['seconds']:.1f}s  ratio {low['ratio']:.1f}x  mAP diff (points) {diffs}", flush=True)
    report["low_shot"] = low
    report["load_average_end"] = os.getloadavg()[0]
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
