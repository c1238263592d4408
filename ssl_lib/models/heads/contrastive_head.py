"""Heads: turn the features an algorithm compares into a dict of losses."""
from __future__ import annotations

import torch
from torch import nn

from ...registry import HEADS
from ..losses import info_nce_from_logits


@HEADS.register_module()
class ContrastiveHead(nn.Module):
    """InfoNCE over one positive and K negatives per sample (MoCo, SimCLR)."""

    def __init__(self, temperature: float = 0.1):
        super().__init__()
        self.temperature = temperature

    def forward(self, pos: torch.Tensor, neg: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(loss=info_nce_from_logits(pos, neg, self.temperature))
