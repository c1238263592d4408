"""MoCo v3's head: the predictor, then the contrastive loss against the global batch's keys."""
from __future__ import annotations

import torch
from torch import nn

from ...registry import HEADS, NECKS, build
from ..losses import mocov3_contrastive
from ..utils import concat_all_gather, get_dist_info


@HEADS.register_module()
class MoCoV3Head(nn.Module):
    """`predictor` (a neck, usually a NonLinearNeck without pooling) on the base encoder's projection;
    the keys (momentum encoder, no gradient) of every process are the candidates, so each query has
    one positive and M - 1 negatives for a global batch of M images, as in the paper."""

    def __init__(self, predictor: dict, temperature: float = 1.0):
        super().__init__()
        self.predictor = build(predictor, NECKS)
        self.temperature = temperature

    def forward(self, base_out: torch.Tensor, momentum_out: torch.Tensor) -> dict[str, torch.Tensor]:
        q = self.predictor((base_out,))[0]
        k = concat_all_gather(momentum_out.detach())
        rank, _ = get_dist_info()
        return dict(loss=mocov3_contrastive(q, k, self.temperature, offset=rank * q.shape[0]))
