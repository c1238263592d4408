"""Relative Location's neck. Parameter names follow the seed (`fc`, `bn`) so its checkpoints load."""
from __future__ import annotations

import torch
from torch import nn

from ...errors import ConfigError
from ...registry import NECKS
from .utils import last_flat

NORM_1D = {"BN1d": nn.BatchNorm1d, "SyncBN": nn.SyncBatchNorm}


@NECKS.register_module()
class RelativeLocNeck(nn.Module):
    """Pool -> fc -> BN1d -> ReLU -> dropout on the features of two patches concatenated on the channel
    dim: `in_channels` is one patch's width (the backbone's), the fc takes twice that. Returns a 1-tuple."""

    def __init__(self, in_channels: int, out_channels: int, with_avg_pool: bool = True,
                 norm_cfg: dict | None = None):
        super().__init__()
        norm_type = (norm_cfg or dict(type="BN1d"))["type"]
        if norm_type not in NORM_1D:
            raise ConfigError(f"RelativeLocNeck: norm_cfg type {norm_type!r} is not supported; use one of "
                              f"{', '.join(NORM_1D)}")
        self.in_channels, self.out_channels, self.with_avg_pool = in_channels, out_channels, with_avg_pool
        self.fc = nn.Linear(in_channels * 2, out_channels)
        self.bn = NORM_1D[norm_type](out_channels, momentum=0.003)
        self.relu = nn.ReLU(inplace=True)
        self.drop = nn.Dropout()
        nn.init.normal_(self.fc.weight, std=0.01)  # the seed's init_cfg
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor]:
        x = last_flat(x, self.with_avg_pool)
        if x.shape[1] != 2 * self.in_channels:
            raise ConfigError(f"RelativeLocNeck: expects two patches' features concatenated, 2 x in_channels="
                              f"{2 * self.in_channels} channels, got {x.shape[1]}")
        return (self.drop(self.relu(self.bn(self.fc(x)))),)
