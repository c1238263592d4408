"""Barlow Twins' head (the seed's LatentCrossCorrelationHead)."""
from __future__ import annotations

import torch
from torch import nn

from ...registry import HEADS
from ..losses import barlow_twins


@HEADS.register_module()
class LatentCrossCorrelationHead(nn.Module):
    """The Barlow Twins loss of two views' embeddings [N, in_channels]: their cross-correlation matrix
    pushed to the identity, off-diagonal terms weighed by `lambd`. Give it the global batch (the
    algorithm gathers it): the seed standardises per GPU with a BatchNorm1d and sums the per-GPU
    matrices, which equals this only when every GPU's batch has the same mean and variance."""

    def __init__(self, in_channels: int = 8192, lambd: float = 0.0051):
        super().__init__()
        self.in_channels, self.lambd = in_channels, lambd

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(loss=barlow_twins(input, target, self.lambd))
