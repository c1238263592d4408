"""SimMIM (Xie et al. 2022): mask large blocks of patches with a learnt token, encode the whole image,
regress the masked pixels with a linear decoder."""
from __future__ import annotations

import torch

from ...errors import ConfigError
from ...registry import ALGORITHMS
from .base import BaseAlgorithm


@ALGORITHMS.register_module()
class SimMIM(BaseAlgorithm):
    """Backbone: a SwinTransformer with `use_mask_token=True`; neck: SimMIMNeck; head: SimMIMHead. The
    samples carry their mask (MaskedImageDataset with a SimMIMMaskGenerator): forward_train(img, mask)."""

    num_views = 1

    def __init__(self, backbone: dict, neck: dict, head: dict):
        super().__init__(backbone, neck, head)
        if getattr(self.backbone, "mask_token", None) is None:
            raise ConfigError("model.backbone: SimMIM replaces masked patches by a mask token; set "
                              "model.backbone.use_mask_token=True")
        patch = self.backbone.patch_embed.patch_size[0]
        stride = patch * 2 ** self.backbone.out_indices[-1]  # of the map the decoder reads
        if self.neck.encoder_stride != stride:
            raise ConfigError(f"model.neck.encoder_stride={self.neck.encoder_stride} but the backbone's stage "
                              f"{self.backbone.out_indices[-1]} is {stride} pixels a cell; set "
                              f"model.neck.encoder_stride={stride}")
        if self.head.patch_size != patch:
            raise ConfigError(f"model.head.patch_size={self.head.patch_size} but the backbone's is {patch}; set "
                              f"model.head.patch_size={patch}")

    def forward_train(self, img: list[torch.Tensor], mask: torch.Tensor, **kwargs) -> dict[str, torch.Tensor]:
        x = img[0]
        latent = self.backbone(x, mask)[-1]
        return self.head(x, self.neck(latent), mask)
