"""BYOL's and SimSiam's head. Parameter names follow the seed (`predictor.*`) so its checkpoints load."""
from __future__ import annotations

import torch
from torch import nn

from ...registry import HEADS, NECKS, build
from ..losses import negative_cosine


@HEADS.register_module()
class LatentPredictHead(nn.Module):
    """Predict the target's latent from the online one: `predictor` (any neck, usually a
    NonLinearNeck without pooling), then -cos(prediction, target) with no gradient through the
    target. -cos is the normalized MSE |p/|p| - z/|z||^2 = 2 - 2 cos less its constant."""

    def __init__(self, predictor: dict):
        super().__init__()
        self.predictor = build(predictor, NECKS)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        pred = self.predictor((input,))[0]
        return dict(loss=negative_cosine(pred, target))
