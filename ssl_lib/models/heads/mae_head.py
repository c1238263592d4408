"""MAE's head: the image cut into the decoder's patch order, and the loss on removed patches."""
from __future__ import annotations

import torch
from torch import nn

from ...registry import HEADS
from ..losses import mae_reconstruction


def patchify(img: torch.Tensor, patch_size: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, (H/p)(W/p), p*p*C], patches row by row, each flattened (row, column, channel)."""
    b, c, h, w = img.shape
    p = patch_size
    x = img.reshape(b, c, h // p, p, w // p, p)
    return torch.einsum("nchpwq->nhwpqc", x).reshape(b, (h // p) * (w // p), p * p * c)


@HEADS.register_module()
class MAEPretrainHead(nn.Module):
    """Mean squared error between the decoder's pixels and the image's, on removed patches only; with
    `norm_pix` (the paper's default for its best results) each target patch is normalised."""

    def __init__(self, norm_pix: bool = True, patch_size: int = 16):
        super().__init__()
        self.norm_pix, self.patch_size = norm_pix, patch_size

    def forward(self, img: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(loss=mae_reconstruction(pred, patchify(img, self.patch_size), mask, self.norm_pix))
