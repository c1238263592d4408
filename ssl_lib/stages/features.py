"""Stage `features`: one pass of a frozen backbone over a prepared dataset's train and test splits,
written once as the features artifact that kNN, the SVMs and the fast linear protocol all read.

feat1..feat5 (the seed's MultiPooling sizes) and avgpool of the pretrained backbone; with
`baselines`, the avgpool of the same backbone at a seeded random init and raw pixels too, so that
every protocol can put its figure beside theirs.
"""
from __future__ import annotations

import argparse
import sys
import time

from .. import outlock, storage
from ..benchmarks.features import (LAYERS, POOL_SIZES, RAW_PIXELS_MAX_SIDE, VIT_LAYERS, build_backbone, eval_dataset,
                                   extract_features, layers_of, load_backbone, load_backbone_meta, write_feature_set)
from ..data.sources import load_manifest
from ..errors import ConfigError, DataError
from ._cli import require_gpus, run_cli

SPLITS = ("train", "test")


@outlock.writes("output")
def features(dataset: str, backbone: str, output: str, layers: list[str] | None = None, baselines: bool = True,
             batch_size: int = 256, workers: int | None = None, gpus: int = 0) -> dict:
    require_gpus("features", gpus)
    meta = load_backbone_meta(backbone)
    known = layers_of(meta["backbone"])
    layers = list(layers or known)
    unknown = [name for name in layers if name not in known]
    if unknown or not layers:
        raise ConfigError(f"features: layers of a {meta['backbone'].get('type')} backbone must be among "
                          f"{list(known)}, got {layers}")
    manifest = load_manifest(dataset)
    for split in SPLITS:
        if not manifest.get("counts", {}).get(split):
            raise DataError(f"dataset {dataset}: split '{split}' is empty; features need a train and a test split")
    pipeline = meta.get("eval_pipeline")
    datasets = {split: eval_dataset(dataset, split, pipeline) for split in SPLITS}

    models = {"pretrained": (load_backbone(backbone)[0], layers)}
    if baselines:
        models["random_init"] = (build_backbone(meta["backbone"], None, seed=0), ["avgpool"])
        models["raw_pixels"] = (None, ["avgpool"])
    start = time.time()
    feats: dict = {split: {} for split in SPLITS}
    labels: dict = {}
    for name, (model, model_layers) in models.items():
        for split in SPLITS:
            tic = time.time()
            feats[split][name], labels[split] = extract_features(
                model, datasets[split], layers=tuple(model_layers), batch_size=batch_size, desc=f"{name} {split}",
                num_workers=workers)
            dims = ", ".join(f"{k} {v.shape[1]}" for k, v in feats[split][name].items())
            print(f"features {name:11s} {split:5s} {len(labels[split])} images, {dims} dims, "
                  f"{time.time() - tic:.1f}s", flush=True)
    info = {"classes": list(datasets["train"].data_source.classes),
            "multi_label": bool(getattr(datasets["train"].data_source, "multi_label", False)),
            "pool_sizes": {name: POOL_SIZES[name] for name in layers}, "raw_pixels_max_side": RAW_PIXELS_MAX_SIDE,
            "backbone_sha256": meta["sha256"], "algorithm": meta["algorithm"], "epoch": meta.get("epoch"),
            "dataset": dataset, "dataset_fingerprint": manifest.get("fingerprint")}
    with storage.publish_dir(output) as staging:
        written = write_feature_set(staging, feats, labels, info)
    return {"layers": written["layers"], "dims": written["dims"], "models": written["models"],
            "splits": written["splits"], "seconds": round(time.time() - start, 1)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ssl_lib.stages.features", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help="prepared dataset folder or s3:// URI")
    p.add_argument("--backbone", required=True, help="extract stage output (backbone.pth + backbone.json)")
    p.add_argument("--output", required=True)
    p.add_argument("--layers", nargs="+", default=None, help=f"any of {' '.join(LAYERS)} (a ViT: {' '.join(VIT_LAYERS)}; default: all)")
    p.add_argument("--no-baselines", dest="baselines", action="store_false",
                   help="skip the random-init and raw-pixel baselines")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--gpus", type=int, default=0, help="GPUs the step was given; fail early if fewer are visible")
    p.add_argument("--workers", type=int, default=None,
                   help="image-decoding processes (default: up to 8 on a GPU, none on a CPU)")
    return p


if __name__ == "__main__":
    sys.exit(run_cli(build_parser(), features))
