"""CAE's encoder (the seed's CAEViT): our VisionTransformer with layer scale, a fixed sin-cos position
embedding, CAE's initialisation, and a forward over the visible patches of a given mask."""
from __future__ import annotations

import torch
from timm.layers import LayerScale
from torch import nn

from ..errors import ConfigError
from ..registry import BACKBONES
from .vit import VisionTransformer


@BACKBONES.register_module()
class CAEViT(VisionTransformer):
    """VisionTransformer's arguments (but weight_init: the init is CAE's), plus `init_values`: each block's attention and MLP branch is
    scaled by a learnt per-channel `gamma` starting at init_values (layer scale, as BEiT / CAE; timm's
    `blocks.i.ls1.gamma` / `ls2.gamma`, so timm's ViTs built with init_values load). The position
    embedding is the fixed 2D sin-cos one by default, as the seed's. Without init_cfg the weights are
    drawn as the authors' code: xavier-uniform linears, zero biases, truncated-normal (0.02) patch
    projection and cls token.

    `forward(x)` is VisionTransformer's (evaluation, fine-tuning); `forward_visible(x, mask)` is CAE's."""

    def __init__(self, *args, init_values: float | None = None, sincos_pos_embed: bool = True,
                 init_cfg: dict | None = None, **kwargs):
        # timm's own init is skipped: every weight it would draw is drawn again below, CAE's way
        super().__init__(*args, sincos_pos_embed=sincos_pos_embed, weight_init="skip", **kwargs)
        if init_values is not None:
            if not init_values > 0:
                raise ConfigError(f"CAEViT init_values={init_values!r} must be > 0 (or None: no layer scale)")
            for block in self.blocks:
                block.ls1 = LayerScale(self.embed_dims, init_values)
                block.ls2 = LayerScale(self.embed_dims, init_values)
        self._init_as_cae()
        if init_cfg is not None:
            self._load_pretrained(init_cfg)
        self._freeze_stages()  # again: the layer scales are new

    def _init_as_cae(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.patch_embed.proj.weight, std=0.02)
        nn.init.zeros_(self.patch_embed.proj.bias)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward_visible(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The tokens of the patches where `mask` [B, L] (bool, 1 = masked, row by row) is False, each
        with its position embedding, after the cls token: [B, 1 + L_visible, C], after the final norm.
        Every image must have the same number of visible patches."""
        x = self.patch_embed(x)
        if x.ndim == 4:  # NHWC from a dynamic-size patch embedding
            x = x.flatten(1, 2)
        b, length, c = x.shape
        if mask.shape != (b, length):
            raise ConfigError(f"CAEViT: the mask is {tuple(mask.shape)} but the image cuts {b} x {length} patches; "
                              f"the mask generator's input_size must be the patch grid {self.patch_embed.grid_size}")
        x = (x + self.pos_embed[:, 1:])[~mask].reshape(b, -1, c)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(b, -1, -1)
        x = self.pos_drop(torch.cat([cls, x], dim=1))
        return self.norm(self.blocks(x))
