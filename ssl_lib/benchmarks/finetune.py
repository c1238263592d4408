"""Full fine-tuning, the protocol by which the seed judges its masked-image-modelling algorithms (MAE,
SimMIM, CAE): the whole backbone plus a linear head trained on the labelled train split, then top-1 /
top-5 on the test split.

The recipe is the seed's fine-tuning configs' (`benchmarks/classification/imagenet/vit-base-p16_ft-...`):
AdamW with layer-wise lr decay (`optimizer.constructor='TransformerFinetuneConstructor'`), a warm-up
then cosine lr by iteration (`lr_config`), drop path in the backbone, Mixup / CutMix on each batch
(`train_cfg.augments`, mmcls's BatchMixup / BatchCutMix: one of them per batch, by their
probabilities) and label smoothing (`model.head.label_smooth_val`). A ViT is read as MAE fine-tunes
it: the mean of its patch tokens through a fresh LayerNorm (`fc_norm`; the pretrained final norm is
dropped), then the head; a CNN or Swin by the global average of its last map.
"""
from __future__ import annotations

import copy
import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..engine.optimizer import OptimizerStep, build_optimizer
from ..engine.schedules import lr_at
from ..errors import ConfigError
from ..models.vit import VisionTransformer
from .features import pool_layer
from .semi import EVAL_BATCH, _loader, decoded_once, evaluate

AUGMENTS = ("BatchMixup", "BatchCutMix")
HEADS = ("MAEFinetuneHead", "SwinFinetuneHead", "ClsHead")  # the seed's names; which one reads the model's kind


def smooth_labels(target: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Soft targets (B, K) -> (1 - smoothing) * target + smoothing / K (mmcls's LabelSmoothLoss, 'original')."""
    return target * (1.0 - smoothing) + smoothing / target.shape[1]


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_k target_k log softmax(logits)_k."""
    return -(target * torch.log_softmax(logits.float(), dim=1)).sum(1).mean()


def cutmix_box(h: int, w: int, lam: float, generator: torch.Generator) -> tuple[int, int, int, int]:
    """A box of about (1 - lam) of the image, centred uniformly, clipped to it: (y0, y1, x0, x1)."""
    cut = float(np.sqrt(1.0 - lam))
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = (int(v) for v in torch.randint(0, h, (1,), generator=generator).tolist()
              + torch.randint(0, w, (1,), generator=generator).tolist())
    return max(cy - ch // 2, 0), min(cy + ch // 2, h), max(cx - cw // 2, 0), min(cx + cw // 2, w)


class BatchAugments:
    """The seed's `train_cfg=dict(augments=[dict(type='BatchMixup', alpha=0.8, prob=0.5),
    dict(type='BatchCutMix', alpha=1.0, prob=0.5)])`: per batch, one augment is drawn by the
    probabilities (the rest of the probability: none); lam ~ Beta(alpha, alpha); the batch is mixed
    with a random permutation of itself and the one-hot targets in the same proportion (for CutMix,
    the box's exact share of the image)."""

    def __init__(self, augments: list[dict] | None, num_classes: int):
        self.augments = []
        for i, aug in enumerate(augments or []):
            aug = dict(aug)
            kind = aug.pop("type", None)
            if kind not in AUGMENTS:
                raise ConfigError(f"train_cfg.augments[{i}].type = {kind!r}: use one of {', '.join(AUGMENTS)}")
            alpha, prob = float(aug.pop("alpha", 1.0)), float(aug.pop("prob", 1.0))
            aug.pop("num_classes", None)  # the seed repeats it here; the dataset's count is used
            if aug:
                raise ConfigError(f"train_cfg.augments[{i}] ({kind}): unknown key(s) {sorted(aug)}")
            if alpha <= 0 or not 0 <= prob <= 1:
                raise ConfigError(f"train_cfg.augments[{i}] ({kind}): need alpha > 0 and prob in [0, 1], "
                                  f"got alpha={alpha}, prob={prob}")
            self.augments.append((kind, alpha, prob))
        if sum(p for _, _, p in self.augments) > 1 + 1e-6:
            raise ConfigError(f"train_cfg.augments: the probabilities add up to more than 1: "
                              f"{[p for _, _, p in self.augments]}")
        self.num_classes = num_classes

    def __call__(self, img: torch.Tensor, label: torch.Tensor,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, str]:
        target = nn.functional.one_hot(label, self.num_classes).to(img.dtype)
        draw, edge = float(torch.rand(1, generator=generator)), 0.0
        for kind, alpha, prob in self.augments:
            edge += prob
            if draw < edge:
                break
        else:
            return img, target, "none"
        lam = float(np.random.default_rng(int(torch.randint(0, 2 ** 31, (1,), generator=generator))).beta(alpha, alpha))
        perm = torch.randperm(len(img), generator=generator)
        if kind == "BatchMixup":
            img = lam * img + (1 - lam) * img[perm]
        else:
            y0, y1, x0, x1 = cutmix_box(img.shape[-2], img.shape[-1], lam, generator)
            img = img.clone()
            img[..., y0:y1, x0:x1] = img[perm][..., y0:y1, x0:x1]
            lam = 1.0 - (y1 - y0) * (x1 - x0) / (img.shape[-2] * img.shape[-1])
        return img, lam * target + (1 - lam) * target[perm], kind


class FineTuneModel(nn.Module):
    """Backbone + head. A ViT: mean of the patch tokens (`pool='mean'`, MAE's) or the CLS token
    (`pool='cls'`), then `fc_norm` (a fresh LayerNorm; the backbone's final norm is dropped, as MAE
    fine-tunes); a feature map: its global average. Head: Linear, weights truncated-normal with
    `init_std` (2e-5 in MAE's recipe), bias 0."""

    def __init__(self, backbone: nn.Module, in_channels: int, num_classes: int, pool: str = "mean",
                 fc_norm: bool = True, init_std: float = 2e-5):
        super().__init__()
        if pool not in ("mean", "cls"):
            raise ConfigError(f"model.head.pool = {pool!r}: use 'mean' (patch tokens) or 'cls'")
        self.backbone = backbone
        vit = isinstance(backbone, VisionTransformer)
        if vit and fc_norm:
            backbone.norm = nn.Identity()
        self.fc_norm = nn.LayerNorm(in_channels, eps=1e-6) if (vit and fc_norm) else nn.Identity()
        # the features stage's names: a ViT's CLS token is "avgpool"; a feature map's global average too
        self.layer = "patch_mean" if (vit and pool == "mean") else "avgpool"
        self.head = nn.Linear(in_channels, num_classes)
        nn.init.trunc_normal_(self.head.weight, std=init_std)
        nn.init.zeros_(self.head.bias)

    def features(self, img: torch.Tensor) -> torch.Tensor:
        return self.fc_norm(pool_layer(self.backbone(img), self.layer))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(img))


def head_width(backbone: nn.Module, sample: torch.Tensor) -> int:
    with torch.no_grad():
        return int(pool_layer(backbone.eval()(sample[None]), "avgpool").shape[1])


def train(model: FineTuneModel, train_ds, *, optimizer_cfg: dict, lr_config: dict, epochs: int, batch_size: int,
          augments: BatchAugments, label_smooth_val: float, optimizer_config: dict | None, fp16: dict | None,
          device: torch.device, seed: int = 0, workers: int = 0, log: Callable[[str], None] = print,
          tag: str = "") -> list[float]:
    """Fine-tune every parameter; the mean training loss of each epoch. Each parameter group's lr
    follows `lr_config` from its own starting lr (the layer-decayed one)."""
    torch.manual_seed(seed)
    model.to(device).train()
    optimizer = build_optimizer(optimizer_cfg, model)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    step = OptimizerStep(optimizer, model, device, optimizer_config, fp16)
    loader = _loader(train_ds, batch_size, True, workers, device, seed)
    gen = torch.Generator().manual_seed(seed)
    losses, last_log, it_total = [], time.time(), 0
    for epoch in range(epochs):
        total, seen = 0.0, 0
        for it, batch in enumerate(loader):
            for group, base in zip(optimizer.param_groups, base_lrs):
                group["lr"] = lr_at(lr_config, base, epoch, it, len(loader), epochs)
            img, label = batch["img"], batch["label"]
            img, target, _ = augments(img, label, gen)
            target = smooth_labels(target, label_smooth_val)
            with step.autocast():
                logits = model(img.to(device, non_blocking=True))
            loss = soft_cross_entropy(logits, target.to(device))
            step(loss, it_total)
            it_total += 1
            total, seen = total + loss.item() * len(label), seen + len(label)
        losses.append(total / max(seen, 1))
        if not np.isfinite(losses[-1]):
            log(f"finetune {tag} epoch {epoch + 1}/{epochs}: the loss diverged; stopping")
            break
        if time.time() - last_log > 30 or epoch + 1 == epochs:
            log(f"finetune {tag} epoch {epoch + 1}/{epochs} loss {losses[-1]:.4f} "
                f"lr {max(g['lr'] for g in optimizer.param_groups):.2e}")
            last_log = time.time()
    return losses


def run(backbone: nn.Module, train_ds, test_ds, num_classes: int, *, head: dict, device: torch.device,
        seed: int = 0, workers: int = 0, log: Callable[[str], None] = print, tag: str = "", **recipe) -> dict:
    """Fine-tune a copy of `backbone` with a fresh head; its test top-1 / top-5 and training losses."""
    start = time.time()
    head = dict(head)
    smoothing = float(head.pop("label_smooth_val", 0.0))
    if not 0 <= smoothing < 1:
        raise ConfigError(f"model.head.label_smooth_val must be in [0, 1), got {smoothing}")
    head.pop("num_classes", None)  # the dataset's count is used
    unknown = set(head) - {"pool", "fc_norm", "init_std", "type"}
    if unknown:
        raise ConfigError(f"model.head: unknown key(s) {sorted(unknown)}; known: pool, fc_norm, init_std, "
                          f"label_smooth_val")
    kind = head.pop("type", None)
    if kind not in (None, *HEADS):
        raise ConfigError(f"model.head.type = {kind!r}: use one of {', '.join(HEADS)}")
    test_ds = decoded_once(test_ds)
    torch.manual_seed(seed)
    backbone = copy.deepcopy(backbone)
    model = FineTuneModel(backbone, head_width(backbone, test_ds[0]["img"]), num_classes, **head)
    losses = train(model, train_ds, augments=BatchAugments(recipe.pop("augments"), num_classes),
                   label_smooth_val=smoothing, device=device, seed=seed, workers=workers, log=log, tag=tag, **recipe)
    acc = evaluate(model, test_ds, max(recipe["batch_size"], EVAL_BATCH), device, workers)
    log(f"finetune {tag}: top1 {100 * acc['top1']:.2f} top5 {100 * acc['top5']:.2f} ({time.time() - start:.0f}s)")
    return dict(top1=acc["top1"], top5=acc["top5"], train_loss=[round(x, 5) for x in losses], epochs_run=len(losses),
                seconds=round(time.time() - start, 1))
