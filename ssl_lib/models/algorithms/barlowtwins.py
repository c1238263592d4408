"""Barlow Twins (Zbontar et al. 2021): make the cross-correlation of two views' embeddings the identity."""
from __future__ import annotations

import torch

from ...errors import ConfigError
from ...registry import ALGORITHMS
from ..utils import gather_with_grad
from .base import BaseAlgorithm


@ALGORITHMS.register_module()
class BarlowTwins(BaseAlgorithm):
    """Each view through backbone + neck (the seed's NonLinearNeck projector); the embeddings of every
    rank are gathered, so the head standardises and cross-correlates over the global batch (as the
    paper's code does with SyncBN) and every rank computes the same loss."""

    num_views = 2

    def __init__(self, backbone: dict, neck: dict, head: dict):
        super().__init__(backbone, neck, head)
        self.check_neck_feeds_head()

    def check_data(self, num_samples: int, global_batch: int, num_views: int | None) -> None:
        super().check_data(num_samples, global_batch, num_views)
        if global_batch < 2:
            raise ConfigError(f"BarlowTwins standardises over the batch: a global batch of {global_batch} "
                              "has no variance; set data.samples_per_gpu x processes >= 2")

    def forward_train(self, img: list[torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        z1, z2 = (self.neck(self.backbone(v))[0] for v in img[:2])
        z = gather_with_grad(torch.stack([z1, z2], dim=1))  # [global N, 2, D], rank by rank
        return self.head(z[:, 0], z[:, 1])
