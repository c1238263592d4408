"""The seed's linear evaluation (`tools/benchmarks/classification/dist_train_linear.sh` with the configs
under `configs/benchmarks/classification/`): linear heads trained on a frozen backbone.

The backbone stays in eval mode without gradients, so its weights and BN statistics never change
(the seed's `frozen_stages=4`). The heads are the seed's:
- MultiClsHead, feat1..feat5: each of the backbone's five feature maps (stem and four stages)
  average-pooled to the seed's MultiPooling side (12, 6, 4, 3, 2: 9216 / 9216 / 8192 / 9216 / 8192
  dims for ResNet-50), BatchNorm without affine parameters, flattened, a Linear layer;
- ClsHead with_avg_pool, "avgpool": the global average of the last map, a Linear layer.
Every head has its own cross-entropy; the training loss is their sum, so each head's gradient
comes from its own loss alone and training them together equals training each one by itself.

The seed pools with fixed AvgPool2d kernels (`pool_type='specified'`) that give those sides for a
224 px ResNet-50 whose stem output is taken before the max-pool; ours is taken after it, so the
pooling is adaptive to the same sides (the features artifact pools the same way).
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from ..engine.optimizer import build_optimizer
from ..engine.schedules import lr_at
from ..errors import ConfigError
from ..registry import PIPELINES
from .features import POOL_SIZES, pool_layer

FEATS = ("feat1", "feat2", "feat3", "feat4", "feat5")
POOL_SIDES = tuple(POOL_SIZES[name] for name in FEATS)
RESNET50_CHANNELS = (64, 256, 512, 1024, 2048)  # the seed's MultiClsHead.FEAT_CHANNELS['resnet50']


@PIPELINES.register_module()
class Lighting:
    """The seed's Lighting: AlexNet-style PCA colour noise on a tensor image (ImageNet eigenvalues,
    alpha ~ N(0, 0.1)), used by its ImageNet multi-head linear recipe after ToTensor."""

    EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
    EIGVEC = torch.tensor([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]])

    def __init__(self, alphastd: float = 0.1):
        self.alphastd = float(alphastd)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if not isinstance(img, torch.Tensor):
            raise ConfigError("Lighting works on tensors: put it after ToTensor in the pipeline")
        if self.alphastd == 0:
            return img
        alpha = torch.randn(3) * self.alphastd
        rgb = (self.EIGVEC * alpha.view(1, 3) * self.EIGVAL.view(1, 3)).sum(1)
        return img + rgb.view(3, 1, 1).to(img.dtype)

    def __repr__(self) -> str:
        return f"Lighting(alphastd={self.alphastd})"


class MultiClsHead(nn.Module):
    """Linear heads on the backbone's five feature maps (see the module docstring). `channels` are the
    five maps' channels; `in_indices` picks feat heads (0 = stem = feat1), `with_avgpool` adds the
    avgpool head. forward(maps) -> {head name: logits}."""

    def __init__(self, channels: Sequence[int], num_classes: int, in_indices: Sequence[int] = (0, 1, 2, 3, 4),
                 with_avgpool: bool = True, pool_sides: Sequence[int] = POOL_SIDES, norm_momentum: float = 0.1):
        super().__init__()
        if len(channels) != 5:
            raise ConfigError(f"MultiClsHead needs the channels of 5 feature maps (stem + 4 stages), "
                              f"got {list(channels)}")
        in_indices = [int(i) for i in in_indices]
        if any(i not in range(5) for i in in_indices) or len(set(in_indices)) != len(in_indices):
            raise ConfigError(f"MultiClsHead in_indices {in_indices} must be distinct entries of 0..4")
        if not in_indices and not with_avgpool:
            raise ConfigError("MultiClsHead has no head: give in_indices or with_avgpool=True")
        self.channels, self.in_indices, self.with_avgpool = list(channels), in_indices, bool(with_avgpool)
        self.pool_sides = [int(pool_sides[i]) for i in in_indices]
        self.names = [FEATS[i] for i in in_indices] + (["avgpool"] if with_avgpool else [])
        self.norms = nn.ModuleDict({FEATS[i]: nn.BatchNorm2d(self.channels[i], momentum=norm_momentum, affine=False)
                                    for i in in_indices})
        dims = [self.channels[i] * s * s for i, s in zip(in_indices, self.pool_sides)]
        if with_avgpool:
            dims.append(self.channels[4])
        self.dims = dict(zip(self.names, dims))
        # parameters are named fcs.<head>.weight / .bias, so paramwise_options can address one head
        self.fcs = nn.ModuleDict({name: nn.Linear(d, num_classes) for name, d in self.dims.items()})
        for fc in self.fcs.values():  # the seed's init of both heads: normal(0, 0.01) weights, zero bias
            nn.init.normal_(fc.weight, std=0.01)
            nn.init.zeros_(fc.bias)

    def forward(self, maps: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        if len(maps) != 5:
            raise ConfigError(f"MultiClsHead takes the backbone's 5 feature maps, got {len(maps)}")
        out = {}
        for i, side in zip(self.in_indices, self.pool_sides):
            x = F.adaptive_avg_pool2d(self._checked(maps, i), side)
            out[FEATS[i]] = self.fcs[FEATS[i]](torch.flatten(self.norms[FEATS[i]](x), 1))
        if self.with_avgpool:
            out["avgpool"] = self.fcs["avgpool"](torch.flatten(F.adaptive_avg_pool2d(self._checked(maps, 4), 1), 1))
        return out

    def _checked(self, maps: Sequence[torch.Tensor], i: int) -> torch.Tensor:
        if maps[i].dim() != 4 or maps[i].shape[1] != self.channels[i]:
            raise ConfigError(f"MultiClsHead: {FEATS[i]} expects {self.channels[i]}-channel maps, "
                              f"the backbone gave {tuple(maps[i].shape)}")
        return maps[i]


def build_head(head_cfg: dict, channels: Sequence[int], num_classes: int) -> MultiClsHead:
    """The head a linear config's `model.head` names, with the seed's keys: MultiClsHead (`in_indices`,
    `backbone='resnet50'` to insist on ResNet-50 widths, `pool_type`, `norm_cfg`; ours: `with_avgpool`
    adds the avgpool head) or ClsHead (`with_avg_pool=True`, `in_channels`: the avgpool head alone).
    The widths the config names must be the backbone's, and `num_classes` the dataset's."""
    cfg = dict(head_cfg)
    kind = cfg.pop("type", None)
    given_classes = cfg.pop("num_classes", None)
    if given_classes is not None and int(given_classes) != num_classes:
        raise ConfigError(f"model.head.num_classes is {given_classes} but the dataset has {num_classes} classes; "
                          f"set --cfg-options model.head.num_classes={num_classes} (or use the dataset it was "
                          f"meant for)")
    norm = dict(cfg.pop("norm_cfg", None) or dict(type="BN", momentum=0.1, affine=False))
    if norm.pop("type", "BN") not in ("BN", "SyncBN") or norm.pop("affine", True) or set(norm) - {"momentum"}:
        raise ConfigError(f"model.head.norm_cfg {head_cfg.get('norm_cfg')}: the heads take BN without affine "
                          f"(dict(type='BN', momentum=0.1, affine=False)); SyncBN is BN in one process")
    wanted: dict[int, int] = {}
    if kind == "MultiClsHead":
        in_indices = cfg.pop("in_indices", (0, 1, 2, 3, 4))
        with_avgpool = cfg.pop("with_avgpool", False)
        if cfg.pop("pool_type", "adaptive") not in ("adaptive", "specified"):
            raise ConfigError(f"model.head.pool_type {head_cfg['pool_type']!r} must be 'adaptive' or 'specified'")
        if cfg.pop("with_last_layer_unpool", False):
            raise ConfigError("model.head.with_last_layer_unpool=True (a head on the unpooled last map) is not "
                              "supported")
        arch = cfg.pop("backbone", None)
        if arch not in (None, "resnet50"):
            raise ConfigError(f"model.head.backbone {arch!r}: the seed's MultiClsHead knows 'resnet50' only")
        if arch:
            wanted = dict(enumerate(RESNET50_CHANNELS))
    elif kind == "ClsHead":
        if not cfg.pop("with_avg_pool", False):
            raise ConfigError("model.head ClsHead: a linear head on the last stage needs with_avg_pool=True")
        in_indices, with_avgpool = (), True
        in_channels = cfg.pop("in_channels", None)
        if in_channels is not None:
            wanted = {4: int(in_channels)}
    else:
        raise ConfigError(f"model.head.type {kind!r}: linear evaluation takes 'MultiClsHead' or 'ClsHead'")
    if cfg:
        raise ConfigError(f"model.head ({kind}): unknown keys {sorted(cfg)}")
    head = MultiClsHead(channels, num_classes, in_indices, with_avgpool, norm_momentum=norm.get("momentum", 0.1))
    for i in [*head.in_indices, *([4] if with_avgpool else [])]:
        if i in wanted and wanted[i] != channels[i]:
            raise ConfigError(f"model.head: {FEATS[i]} is {wanted[i]} channels in the config (ResNet-50), "
                              f"{channels[i]} in this backbone; drop model.head.backbone / in_channels "
                              f"to take the backbone's widths")
    return head


class TokenClsHeads(nn.Module):
    """Linear heads of a transformer backbone's last output, as the ViT linear protocols read it (MoCo v3's
    on the CLS token, MAE's with BN without affine before the FC): a ViT's CLS token ("avgpool") and mean of
    patch tokens ("patch_mean"); a single feature map (Swin) by its global average ("avgpool"). Each head:
    BatchNorm1d without affine, Linear (normal std 0.01, bias 0). forward(outputs) -> {name: logits}."""

    def __init__(self, dim: int, num_classes: int, names: Sequence[str], norm_momentum: float = 0.1):
        super().__init__()
        self.names = list(names)
        self.dims = {name: dim for name in self.names}
        self.norms = nn.ModuleDict({n: nn.BatchNorm1d(dim, momentum=norm_momentum, affine=False) for n in self.names})
        self.fcs = nn.ModuleDict({n: nn.Linear(dim, num_classes) for n in self.names})
        for fc in self.fcs.values():
            nn.init.normal_(fc.weight, std=0.01)
            nn.init.zeros_(fc.bias)

    def forward(self, outputs: Sequence) -> dict[str, torch.Tensor]:
        return {n: self.fcs[n](self.norms[n](pool_layer(outputs, n))) for n in self.names}


def token_heads(head_cfg: dict, outputs: Sequence, num_classes: int) -> TokenClsHeads:
    """The heads for a transformer's outputs; the config's head keeps only its norm momentum and class count
    (its MultiClsHead / ClsHead layer choice is for ResNets)."""
    given = head_cfg.get("num_classes")
    if given is not None and int(given) != num_classes:
        raise ConfigError(f"model.head.num_classes is {given} but the dataset has {num_classes} classes")
    momentum = float((head_cfg.get("norm_cfg") or {}).get("momentum", 0.1))
    last = outputs[-1]
    if isinstance(last, (list, tuple)):
        return TokenClsHeads(int(last[1].shape[-1]), num_classes, ("avgpool", "patch_mean"), momentum)
    return TokenClsHeads(int(last.shape[1]), num_classes, ("avgpool",), momentum)


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> list[int]:
    """How many rows have their label among the top k logits, for each k (k capped at the classes)."""
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hit = top == labels[:, None]
    return [int(hit[:, :k].any(dim=1).sum()) for k in ks]


def head_losses(logits: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, torch.Tensor]:
    return {name: F.cross_entropy(out, labels) for name, out in logits.items()}


@torch.no_grad()
def evaluate(backbone: nn.Module, head: MultiClsHead, ds, batch_size: int, workers: int,
             device: torch.device) -> dict[str, dict[str, float]]:
    """Top-1 / top-5 (fractions) of every head on `ds`."""
    head.eval()
    counts = {name: [0, 0] for name in head.names}
    total = 0
    for batch in DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers,
                            pin_memory=device.type == "cuda"):
        labels = batch["label"].to(device)
        logits = head(backbone(batch["img"].to(device, non_blocking=True)))
        for name, out in logits.items():
            c1, c5 = topk_correct(out, labels)
            counts[name][0] += c1
            counts[name][1] += c5
        total += len(labels)
    return {name: {"top1": c1 / total, "top5": c5 / total} for name, (c1, c5) in counts.items()}


def train_linear(backbone: nn.Module, head: MultiClsHead, train_ds, test_ds, *, optimizer: dict, lr_config: dict,
                 max_epochs: int, batch_size: int, eval_interval: int = 0, workers: int = 0, device: str | None = None,
                 seed: int = 0, log: Callable[[str], None] = print) -> dict:
    """Train `head` on the frozen `backbone`'s maps of `train_ds` (SGD as `optimizer` says, the lr of
    `lr_config` set every iteration), one log line per epoch; test every `eval_interval` epochs and
    after the last. Returns {"heads": {name: {"top1", "top5"}}, "history": [per epoch]}."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    backbone = backbone.to(device).eval().requires_grad_(False)
    head = head.to(device)
    opt = build_optimizer(optimizer, head)
    base_lrs = [group["lr"] for group in opt.param_groups]
    loader = DataLoader(train_ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(seed), pin_memory=device.type == "cuda")
    iters = len(loader)
    history, heads = [], {}
    for epoch in range(max_epochs):
        tic = time.time()
        head.train()
        loss_sum = {name: 0.0 for name in head.names}
        correct = {name: 0 for name in head.names}
        seen = 0
        for it, batch in enumerate(loader):
            for group, base in zip(opt.param_groups, base_lrs):
                group["lr"] = lr_at(lr_config, base, epoch, it, iters, max_epochs)
            labels = batch["label"].to(device)
            with torch.no_grad():
                maps = backbone(batch["img"].to(device, non_blocking=True))
            logits = head(maps)
            losses = head_losses(logits, labels)
            opt.zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            opt.step()
            for name, loss in losses.items():
                loss_sum[name] += float(loss.detach()) * len(labels)
                correct[name] += topk_correct(logits[name].detach(), labels, (1,))[0]
            seen += len(labels)
        record = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"],
                  "loss": {name: loss_sum[name] / seen for name in head.names},
                  "train_top1": {name: correct[name] / seen for name in head.names}}
        last = epoch + 1 == max_epochs
        if last or (eval_interval and (epoch + 1) % eval_interval == 0):
            heads = evaluate(backbone, head, test_ds, batch_size, workers, device)
            record["test"] = heads
        record["seconds"] = round(time.time() - tic, 2)
        history.append(record)
        shown = record.get("test") and {n: v["top1"] for n, v in record["test"].items()}
        log(f"linear epoch {epoch + 1}/{max_epochs} lr {record['lr']:.4g} loss {sum(record['loss'].values()):.4f} "
            + ("test top-1 " if shown else "train top-1 ")
            + " ".join(f"{n} {v:.4f}" for n, v in (shown or record["train_top1"]).items())
            + f" ({record['seconds']:.1f}s)")
    return {"heads": heads, "history": history}
