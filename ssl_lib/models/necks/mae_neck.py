"""MAE's lightweight decoder (He et al. 2022, sec. 3). Parameter names follow the authors' code
(`decoder_embed`, `mask_token`, `decoder_pos_embed`, `decoder_blocks`, `decoder_norm`, `decoder_pred`)."""
from __future__ import annotations

import math

import torch
from timm.models.vision_transformer import Block
from torch import nn

from ...errors import ConfigError
from ...registry import NECKS
from ..vit import sincos_pos_embed_2d


@NECKS.register_module()
class MAEPretrainDecoder(nn.Module):
    """Encoder tokens [B, 1 + L_keep, embed_dim] -> pixels of every patch [B, L, patch_size**2 * in_chans].

    The visible tokens are projected to the decoder width, mask tokens fill the removed positions,
    `ids_restore` puts them back in image order, then a fixed 2D sin-cos position embedding, the
    decoder blocks, a norm and a linear prediction; the cls token is dropped at the end."""

    def __init__(self, num_patches: int = 196, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768,
                 decoder_embed_dim: int = 512, decoder_depth: int = 8, decoder_num_heads: int = 16,
                 mlp_ratio: float = 4.0):
        super().__init__()
        side = math.isqrt(num_patches)
        if side * side != num_patches:
            raise ConfigError(f"MAEPretrainDecoder: num_patches {num_patches} is not a square grid")
        self.in_channels, self.num_patches, self.patch_size = embed_dim, num_patches, patch_size
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.register_buffer("decoder_pos_embed", sincos_pos_embed_2d((side, side), decoder_embed_dim))
        self.decoder_blocks = nn.ModuleList(Block(decoder_embed_dim, decoder_num_heads, mlp_ratio, qkv_bias=True)
                                            for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder_embed_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_embed_dim, patch_size ** 2 * in_chans)
        nn.init.normal_(self.mask_token, std=0.02)  # the authors' init: normal mask token, xavier linears
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        x = self.decoder_embed(x)
        b, kept, c = x.shape
        masks = self.mask_token.expand(b, ids_restore.shape[1] + 1 - kept, -1)
        patches = torch.cat([x[:, 1:], masks], dim=1)  # [visible, removed] -> image order
        patches = torch.gather(patches, 1, ids_restore[..., None].expand(-1, -1, c))
        x = torch.cat([x[:, :1], patches], dim=1) + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]
