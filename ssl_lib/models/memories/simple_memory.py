"""NPID's memory bank: one L2-normalised feature per training sample, updated by momentum."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...registry import MEMORIES
from ..utils import concat_all_gather


@MEMORIES.register_module()
class SimpleMemory(nn.Module):
    """`feature_bank` [length, feat_dim], random unit vectors at first.

    A buffer, so it is saved in checkpoints and restored on resume (the seed kept it out of them).
    Every rank applies the updates of the whole global batch, so the banks stay identical.
    """

    def __init__(self, length: int, feat_dim: int, momentum: float = 0.5):
        super().__init__()
        self.length, self.feat_dim, self.momentum = length, feat_dim, momentum
        self.register_buffer("feature_bank", F.normalize(torch.randn(length, feat_dim), dim=1))

    @torch.no_grad()
    def update(self, idx: torch.Tensor, feature: torch.Tensor) -> None:
        """The seed's rule for the rows `idx` of every rank: normalize((1 - m) * old + m * normalize(new))."""
        idx, feature = concat_all_gather(idx), concat_all_gather(F.normalize(feature, dim=1))
        new = (1 - self.momentum) * self.feature_bank[idx] + self.momentum * feature
        self.feature_bank[idx] = F.normalize(new, dim=1)
