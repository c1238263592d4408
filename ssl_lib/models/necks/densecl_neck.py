"""DenseCL's neck. Parameter names follow the seed (`mlp.0`, `mlp.2`, `mlp2.0`, `mlp2.2`) so its
checkpoints load."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...registry import NECKS


@NECKS.register_module()
class DenseCLNeck(nn.Module):
    """Two heads in parallel on the last feature map: a global pool -> fc -> relu -> fc, and a dense
    1x1 conv -> relu -> 1x1 conv on every position (optionally pooled to num_grid x num_grid first).

    Returns [global [N, out], dense grid [N, out, S*S], dense average-pooled [N, out]] like the seed.
    """

    def __init__(self, in_channels: int, hid_channels: int, out_channels: int, num_grid: int | None = None):
        super().__init__()
        self.in_channels, self.out_channels, self.num_grid = in_channels, out_channels, num_grid
        self.mlp = nn.Sequential(nn.Linear(in_channels, hid_channels), nn.ReLU(inplace=True),
                                 nn.Linear(hid_channels, out_channels))
        self.mlp2 = nn.Sequential(nn.Conv2d(in_channels, hid_channels, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(hid_channels, out_channels, 1))

    def forward(self, x: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        x = x[-1]
        global_vec = self.mlp(F.adaptive_avg_pool2d(x, 1).flatten(1))
        if self.num_grid is not None:
            x = F.adaptive_avg_pool2d(x, self.num_grid)
        dense = self.mlp2(x)
        return [global_vec, dense.flatten(2), F.adaptive_avg_pool2d(dense, 1).flatten(1)]
