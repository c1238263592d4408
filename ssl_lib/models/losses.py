"""Losses as pure functions of tensors: no module state and no distributed calls."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce_from_logits(pos: torch.Tensor, neg: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE: cross-entropy over [pos, neg] / temperature with the positive at index 0.

    pos: [N, 1] similarities to the positive; neg: [N, K] similarities to the negatives.
    """
    logits = torch.cat([pos, neg], dim=1) / temperature
    labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, labels)
