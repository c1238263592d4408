"""The seed's ODCNeck. Parameter names follow the seed (`fc0`, `bn0`, `fc1`) so its checkpoints load."""
from __future__ import annotations

import torch
from torch import nn

from ...errors import ConfigError
from ...registry import NECKS
from .utils import last_flat

NORM_1D = {"BN": nn.BatchNorm1d, "BN1d": nn.BatchNorm1d, "SyncBN": nn.SyncBatchNorm}


@NECKS.register_module()
class ODCNeck(nn.Module):
    """Pool -> fc0 -> bn0 (no affine, momentum 0.001) -> relu -> dropout -> fc1 -> relu. Returns a
    1-tuple like the seed."""

    def __init__(self, in_channels: int, hid_channels: int, out_channels: int, with_avg_pool: bool = True,
                 norm_cfg: dict | None = None):
        super().__init__()
        norm = dict(norm_cfg or dict(type="SyncBN"))
        kind = norm.pop("type", None)
        if kind not in NORM_1D:
            raise ConfigError(f"ODCNeck: norm_cfg type {kind!r} is not one of {', '.join(NORM_1D)}")
        self.in_channels, self.out_channels, self.with_avg_pool = in_channels, out_channels, with_avg_pool
        self.fc0 = nn.Linear(in_channels, hid_channels)
        self.bn0 = NORM_1D[kind](hid_channels, momentum=0.001, affine=False, **norm)
        self.fc1 = nn.Linear(hid_channels, out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout()

    def forward(self, x: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor]:
        x = self.dropout(self.relu(self.bn0(self.fc0(last_flat(x, self.with_avg_pool)))))
        return (self.relu(self.fc1(x)),)
