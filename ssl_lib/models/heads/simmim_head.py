"""SimMIM's head: the patch mask brought to pixels, and the L1 loss on masked pixels."""
from __future__ import annotations

import torch
from torch import nn

from ...registry import HEADS
from ..losses import simmim_reconstruction


@HEADS.register_module()
class SimMIMHead(nn.Module):
    """`forward(img, img_rec, mask)`: mask (B, H/p, W/p) of the model's patches, 1 = masked, each cell
    widened to its patch_size x patch_size pixels; the loss is `simmim_reconstruction`."""

    def __init__(self, patch_size: int, encoder_in_channels: int = 3):
        super().__init__()
        self.patch_size, self.encoder_in_channels = patch_size, encoder_in_channels

    def forward(self, img: torch.Tensor, img_rec: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        pixels = mask.repeat_interleave(self.patch_size, 1).repeat_interleave(self.patch_size, 2)
        return dict(loss=simmim_reconstruction(img, img_rec, pixels))
