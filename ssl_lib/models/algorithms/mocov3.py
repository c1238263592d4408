"""MoCo v3 (Chen, Xie and He 2021): a base encoder with a predictor against a momentum encoder, keys
from the current global batch only (no queue); each view's query against the other view's keys."""
from __future__ import annotations

import copy

import torch
from torch import nn

from ...registry import ALGORITHMS
from .base import BaseAlgorithm
from .byol import check_predictor


def encode(encoder: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """backbone -> projector. A ViT's last output is [patch tokens, cls token]: the projector reads the
    cls token, as the paper (the seed's `vit_backbone=True`); a ResNet's feature map goes as it is."""
    backbone, neck = encoder
    feats = backbone(x)
    if isinstance(feats[-1], (list, tuple)):
        feats = (feats[-1][1],)
    return neck(feats)[0]


@ALGORITHMS.register_module()
class MoCoV3(BaseAlgorithm):
    """base_encoder = backbone + neck (projector), then the head's predictor; momentum_encoder = a copy
    of the base encoder that gets no gradient and follows by `momentum_update()`.

    `base_momentum` is the momentum at the start; MomentumUpdateHook sets `momentum` by the cosine
    rule before each iteration and calls `momentum_update()` after it, as for BYOL. Module names
    follow the seed (`base_encoder`, `momentum_encoder`)."""

    num_views = 2

    def __init__(self, backbone: dict, neck: dict, head: dict, base_momentum: float = 0.99):
        super().__init__(backbone, neck, head)
        check_predictor(self.neck, self.head)
        self.base_encoder = nn.Sequential(self.backbone, self.neck)
        self.momentum_encoder = copy.deepcopy(self.base_encoder)
        for p in self.momentum_encoder.parameters():
            p.requires_grad = False
        self.base_momentum = self.momentum = base_momentum

    @torch.no_grad()
    def momentum_update(self) -> None:
        """momentum <- m * momentum + (1 - m) * base, for every parameter."""
        for p_base, p_mom in zip(self.base_encoder.parameters(), self.momentum_encoder.parameters()):
            p_mom.mul_(self.momentum).add_(p_base.detach(), alpha=1.0 - self.momentum)

    def forward_train(self, img: list[torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        q1, q2 = encode(self.base_encoder, img[0]), encode(self.base_encoder, img[1])
        with torch.no_grad():
            k1, k2 = encode(self.momentum_encoder, img[0]), encode(self.momentum_encoder, img[1])
        loss = self.head(q1, k2)["loss"] + self.head(q2, k1)["loss"]
        return dict(loss=loss)
