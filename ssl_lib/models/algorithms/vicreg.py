"""VICReg (Bardes, Ponce and LeCun 2022): variance, invariance and covariance regularisation of two
views' embeddings, with neither negatives nor a momentum encoder."""
from __future__ import annotations

import torch

from ...errors import ConfigError
from ...registry import ALGORITHMS
from ..utils import gather_with_grad
from .base import BaseAlgorithm


@ALGORITHMS.register_module()
class VICReg(BaseAlgorithm):
    """Each view through backbone + neck (the expander: NonLinearNeck, 3 layers of 8192 with biases, BN
    and ReLU between, none after the last); the embeddings of every rank are gathered with their
    gradients, as the authors' code does, so the variance and covariance terms are over the global
    batch and every rank computes the same loss."""

    num_views = 2

    def __init__(self, backbone: dict, neck: dict, head: dict):
        super().__init__(backbone, neck, head)
        self.check_neck_feeds_head()

    def check_data(self, num_samples: int, global_batch: int, num_views: int | None) -> None:
        super().check_data(num_samples, global_batch, num_views)
        if global_batch < 2:
            raise ConfigError(f"VICReg's variance and covariance are over the batch: a global batch of "
                              f"{global_batch} has none; set data.samples_per_gpu x processes >= 2")

    def forward_train(self, img: list[torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        z1, z2 = (self.neck(self.backbone(v))[0] for v in img[:2])
        z = gather_with_grad(torch.stack([z1, z2], dim=1))  # [global N, 2, D], rank by rank
        return self.head(z[:, 0], z[:, 1])
