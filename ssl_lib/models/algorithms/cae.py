"""CAE (Chen et al. 2022): encode the visible patches, regress the masked patches' latents from them,
align those with the latents the encoder itself gives the masked patches, and decode them into the
DALL-E tokenizer's tokens."""
from __future__ import annotations

import copy

import torch

from ...errors import ConfigError
from ...registry import ALGORITHMS
from .base import BaseAlgorithm


@ALGORITHMS.register_module()
class CAE(BaseAlgorithm):
    """Backbone: a CAEViT (its `forward_visible`); neck: CAENeck; head: CAEHead (tokenizer + loss).
    Data: CAEDataset's [model view, tokenizer view] and `mask` [B, h, w] (1 = masked, the patch grid).

    The teacher is a copy of the backbone that takes no gradient and encodes the masked patches for
    the alignment target. Before each step it moves to m * teacher + (1 - m) * backbone with
    m = `base_momentum`; the seed's 0 makes it the encoder being trained, without gradient. (The seed
    updates it after computing the target, so its teacher lags one optimizer step behind.)"""

    def __init__(self, backbone: dict, neck: dict, head: dict, base_momentum: float = 0.0):
        super().__init__(backbone, neck, head)
        if not hasattr(self.backbone, "forward_visible"):
            raise ConfigError(f"CAE needs a backbone with a masked forward (type='CAEViT'), got {backbone.get('type')}")
        if not 0.0 <= base_momentum <= 1.0:
            raise ConfigError(f"model.base_momentum={base_momentum} must be in [0, 1]")
        if self.neck.num_classes != self.head.num_classes:
            raise ConfigError(f"model.neck.num_classes={self.neck.num_classes} but the tokenizer has "
                              f"{self.head.num_classes} tokens; set model.neck.num_classes={self.head.num_classes}")
        self.teacher = copy.deepcopy(self.backbone)
        for p in self.teacher.parameters():
            p.requires_grad = False
        self.base_momentum = self.momentum = base_momentum

    @torch.no_grad()
    def momentum_update(self) -> None:
        """teacher <- m * teacher + (1 - m) * backbone, for every parameter."""
        for p_backbone, p_teacher in zip(self.backbone.parameters(), self.teacher.parameters()):
            p_teacher.mul_(self.momentum).add_(p_backbone.detach(), alpha=1.0 - self.momentum)

    def forward_train(self, img: list[torch.Tensor], mask: torch.Tensor, **kwargs) -> dict[str, torch.Tensor]:
        x, x_tokenizer = img
        mask = mask.flatten(1).bool()
        b, grid = x.shape[0], self.backbone.patch_embed.grid_size
        cells = (x_tokenizer.shape[-2] // 8) * (x_tokenizer.shape[-1] // 8)
        if cells != mask.shape[1]:
            raise ConfigError(f"CAE: the tokenizer's view ({x_tokenizer.shape[-2]} x {x_tokenizer.shape[-1]} px) gives "
                              f"{cells} tokens for {mask.shape[1]} patches; its size must be 8 x the patch grid "
                              f"{tuple(grid)}: set second_size={8 * grid[0]} in the data pipeline")
        self.momentum_update()
        visible = self.backbone.forward_visible(x, mask)[:, 1:]
        with torch.no_grad():
            latent_target = self.teacher.forward_visible(x, ~mask)[:, 1:]
        pos = self.backbone.pos_embed[:, 1:].expand(b, -1, -1)
        c = pos.shape[-1]
        logits, latent_pred = self.neck(visible, pos[mask].reshape(b, -1, c), pos[~mask].reshape(b, -1, c))
        return self.head(x_tokenizer, logits, latent_pred, latent_target, mask)
