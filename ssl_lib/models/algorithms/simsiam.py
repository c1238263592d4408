"""SimSiam (Chen and He 2021): two views through one encoder; a predictor and a stop-gradient."""
from __future__ import annotations

import torch
from torch import nn

from ...registry import ALGORITHMS
from .base import BaseAlgorithm
from .byol import check_predictor


@ALGORITHMS.register_module()
class SimSiam(BaseAlgorithm):
    """Encoder f = backbone + neck (projector); the head's predictor h. Loss
    0.5 * (D(h(z1), z2) + D(h(z2), z1)) with D = -cos and no gradient through the z it is compared to.

    The predictor's learning rate is usually held fixed by SimSiamHook. Module names follow the
    seed (`encoder` holds the backbone and the neck).
    """

    num_views = 2

    def __init__(self, backbone: dict, neck: dict, head: dict):
        super().__init__(backbone, neck, head)
        check_predictor(self.neck, self.head)
        self.encoder = nn.Sequential(self.backbone, self.neck)

    def forward_train(self, img: list[torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        z1, z2 = (self.encoder(v)[0] for v in img[:2])
        return dict(loss=0.5 * (self.head(z1, z2)["loss"] + self.head(z2, z1)["loss"]))
