"""SimMIM's prediction head, a linear decoder (Xie et al. 2022, sec. 3.3): one 1x1 convolution to the
pixels of each encoder cell, rearranged into the image by a pixel shuffle."""
from __future__ import annotations

import torch
from torch import nn

from ...registry import NECKS


@NECKS.register_module()
class SimMIMNeck(nn.Module):
    """The encoder's last map (B, in_channels, H/s, W/s) -> an image (B, 3, H, W), s = encoder_stride.
    The layer is named `decoder` as in the seed, so its checkpoints' neck weights load."""

    def __init__(self, in_channels: int, encoder_stride: int):
        super().__init__()
        self.in_channels, self.encoder_stride = in_channels, encoder_stride
        self.decoder = nn.Sequential(nn.Conv2d(in_channels, encoder_stride ** 2 * 3, kernel_size=1),
                                     nn.PixelShuffle(encoder_stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(x)
