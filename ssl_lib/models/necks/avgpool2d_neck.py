"""The seed's AvgPool2dNeck (DeepCluster): global average pooling and nothing else."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...registry import NECKS


@NECKS.register_module()
class AvgPool2dNeck(nn.Module):
    """Average-pools the last feature map to `output_size`; returns a 1-tuple [N, C, s, s] like the
    seed. It has no weights and takes any width, so it has no `in_channels`."""

    def __init__(self, output_size: int = 1):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor]:
        if len(x) != 1:
            raise ValueError(f"AvgPool2dNeck takes one feature map, got {len(x)}")
        return (F.adaptive_avg_pool2d(x[0], self.output_size),)
