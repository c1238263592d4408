"""Backbones. Every backbone returns a tuple of feature maps, one per entry of `out_indices`."""
from __future__ import annotations

import functools
from typing import Sequence

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from ..errors import ConfigError
from ..registry import BACKBONES

class SplitBatchNorm(nn.BatchNorm2d):
    """BN whose training statistics come from `num_splits` equal slices of the batch, as if each
    slice were on its own GPU. With MoCo's key shuffle this gives one process the effect of
    shuffle BN (the query and its key are normalized with different sub-batches). In eval mode and
    in its state dict it is plain BN, so weights load into torchvision's ResNet unchanged."""

    def __init__(self, num_features: int, num_splits: int = 4, **kwargs):
        super().__init__(num_features, **kwargs)
        self.num_splits = num_splits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if not self.training or self.num_splits == 1:
            return super().forward(x)
        if n % self.num_splits:
            raise ValueError(f"SplitBN: batch {n} is not divisible by num_splits={self.num_splits}")
        s = self.num_splits
        mean, var = self.running_mean.repeat(s), self.running_var.repeat(s)
        out = nn.functional.batch_norm(
            x.view(n // s, c * s, h, w), mean, var, self.weight.repeat(s), self.bias.repeat(s),
            True, self.momentum, self.eps).view(n, c, h, w)
        self.running_mean.copy_(mean.view(s, c).mean(0))
        self.running_var.copy_(var.view(s, c).mean(0))
        self.num_batches_tracked.add_(1)
        return out


NORM_LAYERS = {"BN": nn.BatchNorm2d, "SyncBN": nn.SyncBatchNorm, "SplitBN": SplitBatchNorm}


def norm_layer(norm_cfg: dict) -> type[nn.Module]:
    """The 2d norm class named by `norm_cfg['type']` (extra keys, e.g. `num_splits`, are bound).

    SyncBN falls back to plain BN in a single process; under a CPU (gloo) process group torch
    refuses it, so a CPU launcher must turn it back into BN (`utils.revert_sync_batchnorm`).
    """
    cfg = dict(norm_cfg or {})
    name = cfg.pop("type", None)
    if name not in NORM_LAYERS:
        raise ConfigError(f"unknown norm_cfg type {name!r}; known: {', '.join(NORM_LAYERS)}")
    cls = NORM_LAYERS[name]
    if cfg:
        return functools.partial(cls, **cfg)
    return cls


@BACKBONES.register_module()
class ResNet(nn.Module):
    """torchvision's ResNet (v1.5, same attribute names) with the seed's backbone options.

    Index 0 is the stem output (after relu/maxpool), 1..4 are layer1..layer4. At
    base_channels=64 and stem='imagenet' the state dict equals torchvision's minus `fc`.
    """

    arch_settings = {
        18: (BasicBlock, (2, 2, 2, 2)),
        34: (BasicBlock, (3, 4, 6, 3)),
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, depth: int, in_channels: int = 3, base_channels: int = 64,
                 stem: str = "imagenet", out_indices: Sequence[int] = (4,),
                 frozen_stages: int = -1, norm_cfg: dict | None = None,
                 norm_eval: bool = False, zero_init_residual: bool = False):
        super().__init__()
        if depth not in self.arch_settings:
            raise ConfigError(f"ResNet depth {depth!r} is not one of {sorted(self.arch_settings)}")
        if stem not in ("imagenet", "cifar"):
            raise ConfigError(f"ResNet stem {stem!r} must be 'imagenet' or 'cifar'")
        out_indices = tuple(out_indices)
        if not out_indices or any(i not in range(5) for i in out_indices):
            raise ConfigError(f"ResNet out_indices {out_indices!r} must be a non-empty subset of 0..4")
        if frozen_stages not in range(-1, 5):
            raise ConfigError(f"ResNet frozen_stages {frozen_stages!r} must be in -1..4")
        block, stage_blocks = self.arch_settings[depth]
        norm = norm_layer(norm_cfg if norm_cfg is not None else dict(type="BN"))
        self.out_indices, self.frozen_stages, self.norm_eval = out_indices, frozen_stages, norm_eval
        self._channels = [base_channels] + [base_channels * 2**i * block.expansion for i in range(4)]
        self.out_channels = tuple(self._channels[i] for i in out_indices)

        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, base_channels, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:  # small images: keep the resolution, as in the SimCLR/MoCo CIFAR variants
            self.conv1 = nn.Conv2d(in_channels, base_channels, 3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = norm(base_channels)
        self.relu = nn.ReLU(inplace=True)
        inplanes = base_channels
        for i, num_blocks in enumerate(stage_blocks):
            planes, stride = base_channels * 2**i, 1 if i == 0 else 2
            downsample = None
            if stride != 1 or inplanes != planes * block.expansion:
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                    norm(planes * block.expansion))
            blocks = [block(inplanes, planes, stride, downsample, norm_layer=norm)]
            inplanes = planes * block.expansion
            blocks += [block(inplanes, planes, norm_layer=norm) for _ in range(1, num_blocks)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self._init_weights(zero_init_residual)
        self._freeze_stages()

    def feat_channels(self, index: int) -> int:
        """Channels of the feature map at `index` (0 = stem, 1..4 = layer1..4)."""
        return self._channels[index]

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():  # torchvision's init, so both start from the same distribution
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:  # each block starts as identity (Goyal et al. 2017)
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _stages(self) -> list[nn.Module]:
        layers = [getattr(self, f"layer{i}") for i in range(1, 5)]
        return [nn.ModuleList([self.conv1, self.bn1]), *layers]

    def _freeze_stages(self) -> None:
        for stage in self._stages()[: self.frozen_stages + 1]:
            stage.eval()
            for p in stage.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> "ResNet":
        super().train(mode)
        self._freeze_stages()  # frozen stages keep their running statistics
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = [x]
        for i in range(1, max(self.out_indices) + 1):  # later stages would be unused work
            outs.append(getattr(self, f"layer{i}")(outs[-1]))
        return tuple(outs[i] for i in self.out_indices)
