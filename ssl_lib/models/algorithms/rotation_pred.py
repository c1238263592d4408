"""Rotation Prediction (Gidaris, Singh and Komodakis 2018): by how many quarter turns was the image rotated?"""
from __future__ import annotations

import torch

from ...errors import ConfigError
from ...registry import ALGORITHMS
from .base import BaseAlgorithm
from .pretext import flatten_pretext_batch


@ALGORITHMS.register_module()
class RotationPred(BaseAlgorithm):
    """Trains on RotationPredDataset: `img` [N, 4, C, H, W] with `rot_label` [N, 4]; backbone -> 4-way head."""

    def __init__(self, backbone: dict, head: dict):
        super().__init__(backbone, None, head)
        width = self.backbone.out_channels[-1]
        if self.head.in_channels != width:
            raise ConfigError(f"model.head.in_channels={self.head.in_channels} does not match the backbone's output "
                              f"width {width}; set model.head.in_channels={width}")

    def check_data(self, num_samples: int, global_batch: int, num_views: int | None) -> None:
        super().check_data(num_samples, global_batch, num_views)
        if num_views is not None:
            raise ConfigError("RotationPred trains on rotated copies with their labels, not on views: set "
                              "data.train.type='RotationPredDataset'")

    def forward_train(self, img: list[torch.Tensor], rot_label: torch.Tensor | None = None,
                      **kwargs) -> dict[str, torch.Tensor]:
        img, rot_label = flatten_pretext_batch("RotationPred", "RotationPredDataset", img, rot_label, "rot_label")
        return self.head.loss(self.head(self.backbone(img)), rot_label)
