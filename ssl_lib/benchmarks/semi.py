"""Semi-supervised classification, the seed's protocol: the whole backbone plus a linear head
(global average pool, FC) fine-tuned on a small labelled part of the train split, then top-1 /
top-5 on the test split.

The labelled part is the seed's list file (`data/imagenet/meta/train_1percent.txt`: one image a
line, its path first) when one is given, else a class-balanced subset: the same number of images
from every class, picked by a seeded shuffle within each class. Each class's shuffle depends only
on the seed and the class, so a smaller fraction's subset lies inside a larger one's.

Training, as the seed's `imagenet_{1,10}percent` configs: SGD with momentum, the head's learning
rate `lr x head_lr_mult`, a step schedule by epoch, BN in train mode, cross-entropy.
"""
from __future__ import annotations

import copy
import io
import time
from typing import Callable

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from .. import storage
from ..data.sources import load_manifest
from ..errors import ConfigError, DataError
from .features import DEFAULT_EVAL_PIPELINE


def per_class_count(num_images: int, num_classes: int, fraction: float) -> int:
    """Images per class for `fraction` of `num_images` spread evenly over the classes (rounded)."""
    return int(np.floor(fraction * num_images / num_classes + 0.5))


def balanced_subset(labels: np.ndarray, fraction: float, classes: list[str], seed: int = 0) -> np.ndarray:
    """Sorted indices of `per_class_count` images of every class, chosen by a seeded shuffle within
    the class. ConfigError when the fraction gives no image per class; DataError naming the class
    when one has too few images."""
    labels = np.asarray(labels)
    n = per_class_count(len(labels), len(classes), fraction)
    if n < 1:
        smallest = len(classes) / (2 * len(labels)) if len(labels) else float("inf")
        raise ConfigError(f"semi: fraction {fraction:g} of {len(labels)} train images over {len(classes)} classes "
                          f"gives 0 images per class; use a fraction of at least {smallest:.3g}")
    chosen = []
    for c, name in enumerate(classes):
        members = np.flatnonzero(labels == c)
        if len(members) < n:
            raise DataError(f"semi: class {name!r} has {len(members)} train image(s); fraction {fraction:g} "
                            f"takes {n} from every class")
        order = np.random.default_rng([seed, c]).permutation(len(members))
        chosen.append(members[order[:n]])
    return np.sort(np.concatenate(chosen))


def split_names(root: str, split: str) -> list[str]:
    """The image names of a prepared dataset's split, in the order ParquetShards reads them."""
    import pyarrow.parquet as pq

    fs, base = storage.arrow_filesystem(root)
    names: list[str] = []
    for shard in (s for s in load_manifest(root)["shards"] if s["split"] == split):
        with fs.open_input_file(f"{base}/{shard['path']}") as f:
            names.extend(pq.read_table(f, columns=["name"]).column("name").to_pylist())
    return names


def _keys(name: str, split: str) -> list[str]:
    """How a list file may name an image: as prep named it, without its split folder, by file
    name, by file name without extension."""
    bare = name.removeprefix(f"{split}/")
    base = bare.rsplit("/", 1)[-1]
    return [name, bare, base, base.rsplit(".", 1)[0]]


def subset_from_list(names: list[str], uri: str, split: str = "train") -> np.ndarray:
    """Sorted indices of the images a list file names (first token of each line; the rest, e.g.
    the seed's label, is ignored). DataError naming the file and the images it names that the
    split lacks, or an image name that fits several images."""
    try:
        text = storage.read_text(uri)
    except Exception as err:
        raise DataError(f"semi: cannot read the subset list {uri}: {err}") from err
    wanted = list(dict.fromkeys(line.split()[0] for line in text.splitlines() if line.strip()))
    if not wanted:
        raise DataError(f"semi: the subset list {uri} names no image")
    lookup: list[dict[str, list[int]]] = [{}, {}, {}, {}]
    for i, name in enumerate(names):
        for table, key in zip(lookup, _keys(name, split)):
            table.setdefault(key, []).append(i)
    chosen, missing = [], []
    for entry in wanted:
        entry = entry.removeprefix("./")
        hits = next((table[entry] for table in lookup if entry in table), None)
        if hits is None:
            missing.append(entry)
        elif len(hits) > 1:
            raise DataError(f"semi: {uri} names {entry!r}, which fits {len(hits)} images of the {split} split "
                            f"({', '.join(names[i] for i in hits[:3])}); name it by its path")
        else:
            chosen.append(hits[0])
    if missing:
        raise DataError(f"semi: {uri} names {len(missing)} image(s) that the {split} split does not have: "
                        f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    return np.unique(np.array(chosen, dtype=np.int64))


def default_pipelines(cfg, meta: dict, crop_scale, first_image) -> tuple[list, list]:
    """The config's pipelines; without them the backbone's eval pipeline for test and, for
    training, RandomResizedCrop (to its CenterCrop size, else its Resize size, else the images'
    size) + flip before the eval pipeline's tensor steps."""
    test = cfg.get("test_pipeline") or meta.get("eval_pipeline") or DEFAULT_EVAL_PIPELINE
    train = cfg.get("train_pipeline")
    if train is None:
        size = (next((t["size"] for t in test if t["type"] == "CenterCrop"), None)
                or next((t["size"] for t in test if t["type"] == "Resize" and isinstance(t["size"], int)), None)
                or max(first_image().size))
        train = [dict(type="RandomResizedCrop", size=size, scale=tuple(crop_scale)),
                 dict(type="RandomHorizontalFlip")] + [t for t in test if t["type"] not in ("Resize", "CenterCrop")]
    return list(train), list(test)


class LabelledImages:
    """A data source of the labelled images `indices` of `source`, read once in index order (so a
    split on disk is read a row group at a time, not at random) into one byte buffer, which
    DataLoader workers share after fork without copying."""

    def __init__(self, source, indices: np.ndarray):
        indices = np.sort(np.asarray(indices, dtype=np.int64))
        chunks = [source.get_bytes(int(i)) for i in indices]
        self.offsets = np.cumsum([0] + [len(c) for c in chunks], dtype=np.int64)
        self.buffer = np.empty(int(self.offsets[-1]), dtype=np.uint8)
        for k in range(len(chunks)):
            self.buffer[self.offsets[k]:self.offsets[k + 1]] = np.frombuffer(chunks[k], dtype=np.uint8)
            chunks[k] = None
        self.indices, self.classes = indices, list(source.classes)
        self.labels = np.asarray(source.labels)[indices]

    def __len__(self) -> int:
        return len(self.indices)

    def get_image(self, i: int) -> Image.Image:
        with Image.open(io.BytesIO(self.buffer[self.offsets[i]:self.offsets[i + 1]].tobytes())) as img:
            return img.convert("RGB")

    def get_label(self, i: int) -> int:
        return int(self.labels[i])


class FineTuneClassifier(nn.Module):
    """The backbone and the seed's ClsHead: global average pool of the last stage, then FC
    (weights normal with std 0.01, bias 0)."""

    def __init__(self, backbone: nn.Module, in_channels: int, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(in_channels, num_classes)
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        last = self.backbone(img)[-1]
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(last, 1), 1))


def build_optimizer(model: FineTuneClassifier, lr: float, head_lr_mult: float, momentum: float,
                    weight_decay: float) -> torch.optim.SGD:
    """SGD over two groups: the backbone at `lr`, the head at `lr x head_lr_mult` (the seed's
    `paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=...)})`)."""
    return torch.optim.SGD([dict(params=list(model.backbone.parameters()), lr=lr),
                            dict(params=list(model.head.parameters()), lr=lr * head_lr_mult)],
                           lr=lr, momentum=momentum, weight_decay=weight_decay)


def _loader(ds, batch_size: int, shuffle: bool, workers: int, device: torch.device, seed: int = 0) -> DataLoader:
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                      generator=torch.Generator().manual_seed(seed) if shuffle else None,
                      pin_memory=device.type == "cuda")


def fine_tune(model: FineTuneClassifier, train_ds, *, lr: float, head_lr_mult: float, epochs: int,
              milestones: list[int], gamma: float, momentum: float, weight_decay: float, batch_size: int,
              device: torch.device, seed: int = 0, workers: int = 0,
              log: Callable[[str], None] = print, tag: str = "") -> list[float]:
    """Train every parameter of `model` on `train_ds`; the mean training loss of each epoch.
    An epoch gets a log line when 30 s have passed since the last one."""
    torch.manual_seed(seed)  # the same augmentations and batches for every setting of the grid
    model.to(device).train()
    optimizer = build_optimizer(model, lr, head_lr_mult, momentum, weight_decay)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=gamma)
    loader = _loader(train_ds, batch_size, True, workers, device, seed)
    losses, last_log = [], time.time()
    for epoch in range(epochs):
        total, seen = 0.0, 0
        for batch in loader:
            img, label = batch["img"].to(device, non_blocking=True), batch["label"].to(device, non_blocking=True)
            loss = nn.functional.cross_entropy(model(img), label)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, seen = total + loss.item() * len(label), seen + len(label)
        schedule.step()
        losses.append(total / max(seen, 1))
        if not np.isfinite(losses[-1]):
            log(f"semi {tag} epoch {epoch + 1}/{epochs}: the loss diverged; stopping this setting")
            break
        if time.time() - last_log > 30 and epoch + 1 < epochs:
            log(f"semi {tag} epoch {epoch + 1}/{epochs} loss {losses[-1]:.4f}")
            last_log = time.time()
    return losses


@torch.no_grad()
def evaluate(model: nn.Module, test_ds, batch_size: int, device: torch.device, workers: int = 0) -> dict:
    """Top-1 and top-5 accuracy (fractions in [0, 1]) of `model` on `test_ds`, BN in eval mode."""
    model.to(device).eval()
    top1 = top5 = seen = 0
    for batch in _loader(test_ds, batch_size, False, workers, device):
        logits = model(batch["img"].to(device, non_blocking=True)).float()
        label = batch["label"].to(device)
        ranked = logits.topk(min(5, logits.shape[1]), dim=1).indices
        top1 += int((ranked[:, 0] == label).sum())
        top5 += int((ranked == label[:, None]).any(dim=1).sum())
        seen += len(label)
    return {"top1": top1 / seen, "top5": top5 / seen}


EVAL_BATCH = 256
DECODED_MAX_BYTES = 1 << 30


class _Decoded(torch.utils.data.Dataset):
    def __init__(self, img: torch.Tensor, label: torch.Tensor):
        self.img, self.label = img, label

    def __len__(self) -> int:
        return len(self.label)

    def __getitem__(self, i: int) -> dict:
        return {"img": self.img[i], "label": self.label[i]}


def decoded_once(ds):
    """The test split decoded and transformed once, when it fits in DECODED_MAX_BYTES: every setting of
    the grid evaluates on the same (deterministic) test images, and decoding them was most of the time."""
    first = ds[0]["img"]
    if len(ds) * first.numel() * first.element_size() > DECODED_MAX_BYTES:
        return ds
    samples = [ds[i] for i in range(len(ds))]
    return _Decoded(torch.stack([s["img"] for s in samples]), torch.as_tensor([int(s["label"]) for s in samples]))


def run_grid(backbone: nn.Module, labelled_ds, test_ds, num_classes: int, *, lrs, head_lr_mults,
             device: torch.device, seed: int = 0, workers: int = 0, log: Callable[[str], None] = print,
             tag: str = "", **schedule) -> list[dict]:
    """Fine-tune a fresh copy of `backbone` (and a fresh head) on `labelled_ds` for each
    lr x head_lr_mult; one row each, with its test top-1 / top-5."""
    with torch.no_grad():
        in_channels = backbone.eval()(test_ds[0]["img"][None])[-1].shape[1]
    test_ds = decoded_once(test_ds)
    rows = []
    for lr in lrs:
        for mult in head_lr_mults:
            start = time.time()
            torch.manual_seed(seed)
            model = FineTuneClassifier(copy.deepcopy(backbone), in_channels, num_classes)
            setting = f"{tag} lr={lr:g} head x{mult:g}"
            losses = fine_tune(model, labelled_ds, lr=lr, head_lr_mult=mult, device=device, seed=seed, workers=workers,
                               log=log, tag=setting, **schedule)
            acc = evaluate(model, test_ds, max(schedule["batch_size"], EVAL_BATCH), device, workers)
            rows.append(dict(lr=lr, head_lr_mult=mult, top1=acc["top1"], top5=acc["top5"],
                             train_loss=losses[-1] if np.isfinite(losses[-1]) else None, epochs_run=len(losses),
                             seconds=round(time.time() - start, 1)))
            log(f"semi {setting}: top1 {100 * acc['top1']:.2f} top5 {100 * acc['top5']:.2f} "
                f"(loss {losses[-1]:.4f}, {time.time() - start:.0f}s)")
    return rows
