"""Relative Location (Doersch, Gupta and Efros 2015): which of the 8 neighbours of the centre patch is this?"""
from __future__ import annotations

import torch

from ...errors import ConfigError
from ...registry import ALGORITHMS
from .base import BaseAlgorithm
from .pretext import flatten_pretext_batch


@ALGORITHMS.register_module()
class RelativeLoc(BaseAlgorithm):
    """Trains on RelativeLocDataset: `img` [N, 8, 2C, h, w] (neighbour and centre patch on the channel dim)
    with `patch_label` [N, 8]. The backbone sees each patch alone; the neck joins the pair."""

    def __init__(self, backbone: dict, neck: dict, head: dict):
        super().__init__(backbone, neck, head)
        if self.head.in_channels != self.neck.out_channels:
            raise ConfigError(f"model.head.in_channels={self.head.in_channels} does not match "
                              f"model.neck.out_channels={self.neck.out_channels}; set them equal")

    def check_data(self, num_samples: int, global_batch: int, num_views: int | None) -> None:
        super().check_data(num_samples, global_batch, num_views)
        if num_views is not None:
            raise ConfigError("RelativeLoc trains on patch pairs with their labels, not on views: set "
                              "data.train.type='RelativeLocDataset'")

    def forward_train(self, img: list[torch.Tensor], patch_label: torch.Tensor | None = None,
                      **kwargs) -> dict[str, torch.Tensor]:
        img, patch_label = flatten_pretext_batch("RelativeLoc", "RelativeLocDataset", img, patch_label, "patch_label")
        if img.shape[1] % 2:
            raise ConfigError(f"RelativeLoc: each sample must hold two patches on the channel dim (2C), got "
                              f"{img.shape[1]} channels; the data must come from RelativeLocDataset")
        neighbour, centre = torch.chunk(img, 2, dim=1)
        x = (torch.cat((self.backbone(neighbour)[-1], self.backbone(centre)[-1]), dim=1),)
        return self.head.loss(self.head(self.neck(x)), patch_label)
