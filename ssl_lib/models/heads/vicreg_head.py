"""VICReg's head: the loss of two views' expander outputs (no parameters)."""
from __future__ import annotations

import torch
from torch import nn

from ...registry import HEADS
from ..losses import vicreg


@HEADS.register_module()
class VICRegHead(nn.Module):
    """sim_coeff * invariance + std_coeff * variance + cov_coeff * covariance of two views' embeddings
    [N, in_channels] (losses.vicreg). Give it the global batch: the variance and covariance terms are
    statistics of the batch, and the authors compute them over all GPUs' embeddings."""

    def __init__(self, in_channels: int = 8192, sim_coeff: float = 25.0, std_coeff: float = 25.0,
                 cov_coeff: float = 1.0):
        super().__init__()
        self.in_channels = in_channels
        self.sim_coeff, self.std_coeff, self.cov_coeff = sim_coeff, std_coeff, cov_coeff

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(loss=vicreg(z1, z2, self.sim_coeff, self.std_coeff, self.cov_coeff))
