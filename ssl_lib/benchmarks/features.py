"""Frozen-backbone features and the features artifact that every classification benchmark reads.

Layers as the seed names them: feat1..feat5 are the stem and the four ResNet stages, each
adaptive-average-pooled to the seed's MultiPooling sizes (12, 6, 4, 3, 2) and flattened (9216 /
9216 / 8192 / 9216 / 8192 dims for ResNet-50, the SVM protocol's features); avgpool is the global
average of the last stage. A vision transformer gives avgpool = its CLS token after the final norm
and patch_mean = the mean of its patch tokens, as the seed's ViT linear protocol reads them. Raw pixels
are the baseline that needs no network.

The artifact (stage `features`): `features.json`, `<split>.<model>.<layer>.npy` (float32, N x D) and
`<split>.labels.npy` (int64 class indices, or int8 N x C of 1 / -1 / 0 for a multi-label dataset,
0 = only difficult instances of that class)."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

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
LAYERS = ("feat1", "feat2", "feat3", "feat4", "feat5", "avgpool")
VIT_LAYERS = ("avgpool", "patch_mean")
SWIN_LAYERS = ("avgpool",)
POOL_SIZES = {"feat1": 12, "feat2": 6, "feat3": 4, "feat4": 3, "feat5": 2, "avgpool": 1,  # the seed's MultiPooling
              "patch_mean": 1}


def is_vit(backbone_cfg: dict) -> bool:
    """A VisionTransformer or a backbone built on it (CAE's CAEViT)."""
    import ssl_lib.models  # noqa: F401  (registers backbones)
    from ..models.vit import VisionTransformer

    cls = BACKBONES.module_dict.get(backbone_cfg.get("type"))
    return isinstance(cls, type) and issubclass(cls, VisionTransformer)


def is_swin(backbone_cfg: dict) -> bool:
    return backbone_cfg.get("type") == "SwinTransformer"


def layers_of(backbone_cfg: dict) -> tuple[str, ...]:
    """The layer names the features of this backbone can be taken from."""
    return VIT_LAYERS if is_vit(backbone_cfg) else SWIN_LAYERS if is_swin(backbone_cfg) else LAYERS


def load_backbone_meta(weights: str) -> dict:
    meta_uri = storage.join(weights, "backbone.json")
    if not storage.exists(meta_uri):
        raise DataError(f"backbone weights not found: {meta_uri} (run the extract stage first)")
    return json.loads(storage.read_text(meta_uri))


def build_backbone(backbone_cfg: dict, state_dict: dict | None = None, seed: int = 0) -> torch.nn.Module:
    """The backbone of `backbone_cfg`, with `state_dict` loaded, or at a seeded random init."""
    import ssl_lib.models  # noqa: F401  (registers backbones)

    if is_vit(backbone_cfg):  # the last block's [patch tokens, CLS token]
        cfg = dict(backbone_cfg, out_indices=(-1,), frozen_stages=-1, output_cls_token=True, init_cfg=None)
    elif is_swin(backbone_cfg):  # the last stage's map, after the final norm
        cfg = dict(backbone_cfg, out_indices=(-1,), frozen_stages=-1, init_cfg=None)
    else:
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


def pool_layer(feats: tuple, name: str) -> torch.Tensor:
    """Layer `name` of the backbone's five outputs, pooled to its POOL_SIZES side and flattened; of a
    vision transformer's last [patch tokens, CLS token], the CLS token (avgpool) or the patch mean."""
    if isinstance(feats[-1], (list, tuple)):
        patches, cls = feats[-1]
        return cls if name == "avgpool" else patches.mean(dim=(2, 3))
    idx = len(feats) - 1 if name == "avgpool" else int(name.removeprefix("feat")) - 1
    return torch.flatten(torch.nn.functional.adaptive_avg_pool2d(feats[idx], POOL_SIZES[name]), 1)


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
            out[name].append(pool_layer(feats, name).float().cpu().numpy())
    return {k: np.concatenate(v).astype(np.float32) for k, v in out.items()}, np.concatenate(labels)


class FeatureSet:
    """A features artifact read back; arrays are loaded on first use (an S3 one is downloaded then)."""

    def __init__(self, uri: str):
        meta_uri = storage.join(uri, "features.json")
        if not storage.exists(meta_uri):
            raise DataError(f"features not found: {meta_uri} (run the features stage first)")
        self.uri, self.meta = uri, json.loads(storage.read_text(meta_uri))
        self.layers, self.classes = list(self.meta["layers"]), list(self.meta["classes"])
        self.multi_label, self.splits = bool(self.meta["multi_label"]), dict(self.meta["splits"])
        self.models = list(self.meta["models"])
        self._cache: dict[str, np.ndarray] = {}

    def _load(self, name: str) -> np.ndarray:
        if name not in self._cache:
            uri = storage.join(self.uri, name)
            if not storage.exists(uri):
                raise DataError(f"{uri}: not in the features artifact (layers {self.layers}, models {self.models}, "
                                f"splits {list(self.splits)})")
            self._cache[name] = np.load(io.BytesIO(storage.read_bytes(uri)), allow_pickle=False)
        return self._cache[name]

    def x(self, split: str, layer: str, model: str = "pretrained") -> np.ndarray:
        return self._load(f"{split}.{model}.{layer}.npy")

    def y(self, split: str) -> np.ndarray:
        return self._load(f"{split}.labels.npy")


def load_feature_set(uri: str) -> FeatureSet:
    return FeatureSet(uri)


def write_feature_set(staging: Path, feats: dict, labels: dict, meta: dict) -> dict:
    """Write `feats[split][model][layer]` arrays and `labels[split]` into `staging` (a publish_dir
    folder), with features.json: `meta` completed with the layers, models, dims and split sizes."""
    first = next(iter(feats.values()))
    ref = first.get("pretrained") or next(iter(first.values()))
    meta = dict(meta, layers=list(ref), models=list(first), splits={s: int(len(y)) for s, y in labels.items()},
                dims={layer: int(arr.shape[1]) for layer, arr in ref.items()})
    meta.setdefault("multi_label", bool(next(iter(labels.values())).ndim == 2))
    for split, by_model in feats.items():
        for model, by_layer in by_model.items():
            for layer, arr in by_layer.items():
                if len(arr) != len(labels[split]):
                    raise DataError(f"features {split}.{model}.{layer}: {len(arr)} rows for "
                                    f"{len(labels[split])} labels")
                np.save(staging / f"{split}.{model}.{layer}.npy", np.ascontiguousarray(arr, dtype=np.float32))
        np.save(staging / f"{split}.labels.npy", labels[split])
    (staging / "features.json").write_text(json.dumps(meta, indent=2))
    return meta


def config_from_text(text: str) -> Config:
    return Config.fromstring(text, ".py")
