"""MAE (He et al. 2022): encode a random quarter of the patches, reconstruct the pixels of the rest."""
from __future__ import annotations

import torch

from ...errors import ConfigError
from ...registry import ALGORITHMS
from .base import BaseAlgorithm


@ALGORITHMS.register_module()
class MAE(BaseAlgorithm):
    """Backbone: a VisionTransformer (its `forward_masked`); neck: MAEPretrainDecoder; head:
    MAEPretrainHead. `mask_ratio` of each image's patches is removed, drawn anew per image and step."""

    num_views = 1

    def __init__(self, backbone: dict, neck: dict, head: dict, mask_ratio: float = 0.75):
        super().__init__(backbone, neck, head)
        if not 0 < mask_ratio < 1:
            raise ConfigError(f"model.mask_ratio must be in (0, 1), got {mask_ratio}")
        self.mask_ratio = mask_ratio
        embed = self.backbone.patch_embed
        if self.neck.num_patches != embed.num_patches:
            raise ConfigError(f"model.neck.num_patches={self.neck.num_patches} but the backbone cuts "
                              f"{embed.num_patches} patches; set model.neck.num_patches={embed.num_patches}")
        for where, size in (("neck", self.neck.patch_size), ("head", self.head.patch_size)):
            if size != embed.patch_size[0]:
                raise ConfigError(f"model.{where}.patch_size={size} but the backbone's is {embed.patch_size[0]}; "
                                  f"set model.{where}.patch_size={embed.patch_size[0]}")

    def forward_train(self, img: list[torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        x = img[0]
        latent, mask, ids_restore = self.backbone.forward_masked(x, self.mask_ratio)
        pred = self.neck(latent, ids_restore)
        return self.head(x, pred, mask)
