"""Necks: map the backbone's tuple of feature maps to the vectors a head compares.

Parameter names follow the seed (`fc`, `mlp.0`, `mlp.2`) so its checkpoints load.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import NECKS


def _last_flat(x: tuple[torch.Tensor, ...], with_avg_pool: bool) -> torch.Tensor:
    x = x[-1]
    if with_avg_pool:
        x = F.adaptive_avg_pool2d(x, 1)
    return x.flatten(1)


@NECKS.register_module()
class LinearNeck(nn.Module):
    """MoCo v1: pool -> fc. Returns a 1-tuple like the seed."""

    def __init__(self, in_channels: int, out_channels: int, with_avg_pool: bool = True):
        super().__init__()
        self.with_avg_pool, self.out_channels = with_avg_pool, out_channels
        self.fc = nn.Linear(in_channels, out_channels)

    def forward(self, x: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor]:
        return (self.fc(_last_flat(x, self.with_avg_pool)),)


@NECKS.register_module()
class MoCoV2Neck(nn.Module):
    """MoCo v2: pool -> fc -> relu -> fc. Returns a 1-tuple like the seed."""

    def __init__(self, in_channels: int, hid_channels: int, out_channels: int,
                 with_avg_pool: bool = True):
        super().__init__()
        self.with_avg_pool, self.out_channels = with_avg_pool, out_channels
        self.mlp = nn.Sequential(nn.Linear(in_channels, hid_channels), nn.ReLU(inplace=True),
                                 nn.Linear(hid_channels, out_channels))

    def forward(self, x: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor]:
        return (self.mlp(_last_flat(x, self.with_avg_pool)),)
