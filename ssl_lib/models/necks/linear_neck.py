"""MoCo v1's neck. Parameter names follow the seed (`fc`) so its checkpoints load."""
from __future__ import annotations

import torch
from torch import nn

from ...registry import NECKS
from .utils import last_flat


@NECKS.register_module()
class LinearNeck(nn.Module):
    """Pool -> fc. Returns a 1-tuple like the seed."""

    def __init__(self, in_channels: int, out_channels: int, with_avg_pool: bool = True):
        super().__init__()
        self.in_channels, self.out_channels, self.with_avg_pool = in_channels, out_channels, with_avg_pool
        self.fc = nn.Linear(in_channels, out_channels)

    def forward(self, x: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor]:
        return (self.fc(last_flat(x, self.with_avg_pool)),)
