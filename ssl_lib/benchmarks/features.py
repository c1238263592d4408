"""Frozen-backbone features: per layer (feat1..feat5 = global-average-pooled stem and stages,
avgpool = pooled last stage), and raw pixels for the baseline."""
from __future__ import annotations

import io
import json
import os

import numpy as np
import torch
from mmengine.config import Config
from torch.utils.data import DataLoader
from tqdm import tqdm

from .. import storage
from ..errors import DataError
from ..registry import BACKBONES, DATASETS, build

DEFAULT_EVAL_PIPELINE = [dict(type="ToTensor"), dict(type="Normalize", mean=[0.5] * 3, std=[0.5] * 3)]
RAW_PIXELS_MAX_SIDE = 32  # larger images are area-averaged down first: 224 px ImageNet would be 150k dims


def load_backbone_meta(weights: str) -> dict:
    meta_uri = storage.join(weights, "backbone.json")
    if not storage.exists(meta_uri):
        raise DataError(f"backbone weights not found: {meta_uri} (run the extract stage first)")
    return json.loads(storage.read_text(meta_uri))


def build_backbone(backbone_cfg: dict, state_dict: dict | None = None, seed: int = 0) -> torch.nn.Module:
    """The backbone of `backbone_cfg`, with `state_dict` loaded, or at a seeded random init."""
    import ssl_lib.models  # noqa: F401  (registers backbones)

    cfg = dict(backbone_cfg, out_indices=(0, 1, 2, 3, 4), frozen_stages=-1)
    if cfg.get("norm_cfg", {}).get("type") in ("SyncBN", "SplitBN"):
        cfg["norm_cfg"] = dict(type="BN")  # both are plain BN in eval mode, and evaluation is single-process
    torch.manual_seed(seed)
    model = build(cfg, BACKBONES)
    if state_dict is not None:
        model.load_state_dict(state_dict, strict=True)
    return model.eval()


def load_backbone(weights: str) -> tuple[torch.nn.Module, dict]:
    meta = load_backbone_meta(weights)
    state = torch.load(io.BytesIO(storage.read_bytes(storage.join(weights, "backbone.pth"))),
                       map_location="cpu", weights_only=True)
    return build_backbone(meta["backbone"], state), meta


def eval_dataset(dataset: str, split: str, pipeline: list | None):
    import ssl_lib.data  # noqa: F401  (registers sources, datasets, transforms)

    return build(dict(type="SingleViewDataset", data_source=dict(type="ParquetShards", root=dataset, split=split),
                      pipeline=pipeline or DEFAULT_EVAL_PIPELINE), DATASETS)


def raw_pixels(img: torch.Tensor) -> torch.Tensor:
    """The raw-pixel baseline's features: the image itself, at most RAW_PIXELS_MAX_SIDE on a side."""
    h, w = img.shape[-2:]
    if max(h, w) > RAW_PIXELS_MAX_SIDE:
        scale = RAW_PIXELS_MAX_SIDE / max(h, w)
        img = torch.nn.functional.adaptive_avg_pool2d(img, (max(1, round(h * scale)), max(1, round(w * scale))))
    return img.flatten(1)


@torch.no_grad()
def extract_features(backbone: torch.nn.Module | None, ds, layers=("avgpool",), batch_size: int = 256,
                     desc: str = "features", device: str | None = None,
                     num_workers: int | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Features of every image in `ds` for each name in `layers`; backbone None gives raw pixels.
    On a GPU (the default when there is one) the images are decoded by `num_workers` loader
    processes (default: up to 8); on a CPU the model's own threads are busier without them."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if num_workers is None:
        num_workers = min(8, os.cpu_count() or 1) if device.type == "cuda" else 0
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    if backbone is not None:
        backbone = backbone.to(device)
    out: dict[str, list] = {name: [] for name in layers}
    labels = []
    for batch in tqdm(loader, desc=desc, leave=False, mininterval=5.0):
        img = batch["img"]
        labels.append(batch["label"].numpy())
        if backbone is None:
            out[layers[0]].append(raw_pixels(img).numpy())
            continue
        feats = backbone(img.to(device, non_blocking=True))
        for name in layers:
            idx = 4 if name == "avgpool" else int(name.removeprefix("feat")) - 1
            pooled = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(feats[idx], 1), 1)
            out[name].append(pooled.float().cpu().numpy())
    return {k: np.concatenate(v).astype(np.float32) for k, v in out.items()}, np.concatenate(labels)


def config_from_text(text: str) -> Config:
    return Config.fromstring(text, ".py")
