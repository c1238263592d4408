"""CAE's latent context regressor and decoder (Chen et al. 2022, sec. 3). The regressor predicts the
masked patches' latents from the visible ones with cross-attention only, so the encoder alone has to
understand the image; the decoder turns the predicted latents into tokenizer logits."""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import LayerScale, Mlp
from timm.models.vision_transformer import Block
from torch import nn

from ...errors import ConfigError
from ...registry import NECKS


class CrossAttention(nn.Module):
    """Multi-head attention of queries q [B, Nq, C] over keys k and values v [B, Nk, C]. With qkv_bias
    the query and value projections have a bias, the key projection none (a bias on keys shifts every
    logit of a query equally: softmax ignores it), as the authors' code."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"CAENeck: embed_dims {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.q, self.k, self.v = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.q_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.v_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.proj = nn.Linear(dim, dim)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, nq, c = q.shape
        heads = lambda t: t.reshape(b, t.shape[1], self.num_heads, -1).transpose(1, 2)  # noqa: E731
        q = heads(F.linear(q, self.q.weight, self.q_bias))
        k = heads(self.k(k))
        v = heads(F.linear(v, self.v.weight, self.v_bias))
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, nq, c))


class RegressorBlock(nn.Module):
    """One regressor layer: the mask queries attend to [visible latents, mask queries] (positions added
    to queries and keys, not values), then an MLP; both branches layer-scaled. As the authors' code the
    residual stream is normalised between the two (`norm2_cross`), not only the MLP's input."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, init_values: float | None):
        super().__init__()
        self.norm1_q, self.norm1_k, self.norm1_v, self.norm2_cross = (nn.LayerNorm(dim, eps=1e-6) for _ in range(4))
        self.cross_attn = CrossAttention(dim, num_heads, qkv_bias)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()

    def forward(self, x: torch.Tensor, kv: torch.Tensor, pos_q: torch.Tensor, pos_k: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.cross_attn(self.norm1_q(x + pos_q), self.norm1_k(kv + pos_k), self.norm1_v(kv)))
        x = self.norm2_cross(x)
        return x + self.ls2(self.mlp(x))


@NECKS.register_module()
class CAENeck(nn.Module):
    """Visible latents [B, Nv, C] (the encoder's, without its cls token) and the position embeddings of
    the masked and the visible patches -> (logits [B, Nm, num_classes], latent prediction [B, Nm, C]).

    Regressor: a learnt mask token per masked patch, `regressor_depth` RegressorBlocks, a norm: the
    latent prediction, aligned with the teacher's latents of those patches. Decoder: the prediction plus
    its position embedding, `decoder_depth` self-attention blocks (timm's, layer-scaled), a norm and a
    linear layer to the tokenizer's `num_classes` logits. The regressor's keys include the mask
    queries themselves, as the paper (each layer attends to the visible latents and its own output)."""

    def __init__(self, num_classes: int = 8192, embed_dims: int = 768, regressor_depth: int = 4,
                 decoder_depth: int = 4, num_heads: int = 12, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 init_values: float | None = None):
        super().__init__()
        if regressor_depth < 1 or decoder_depth < 0:
            raise ConfigError(f"CAENeck: regressor_depth={regressor_depth} must be >= 1 and decoder_depth="
                              f"{decoder_depth} >= 0")
        self.in_channels, self.num_classes = embed_dims, num_classes
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.regressors = nn.ModuleList(RegressorBlock(embed_dims, num_heads, mlp_ratio, qkv_bias, init_values)
                                        for _ in range(regressor_depth))
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.decoders = nn.ModuleList(Block(embed_dims, num_heads, mlp_ratio, qkv_bias=qkv_bias,
                                            init_values=init_values, norm_layer=norm) for _ in range(decoder_depth))
        self.norm_regressor = nn.LayerNorm(embed_dims, eps=1e-6)
        self.norm_decoder = nn.LayerNorm(embed_dims, eps=1e-6)
        self.head = nn.Linear(embed_dims, num_classes)
        for m in self.modules():  # the authors' init: xavier linears, then normal(0.02) tokens and classifier
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.head.weight, std=0.02)

    def forward(self, visible: torch.Tensor, pos_masked: torch.Tensor,
                pos_visible: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.mask_token.expand(visible.shape[0], pos_masked.shape[1], -1)
        pos_k = torch.cat([pos_visible, pos_masked], dim=1)
        for block in self.regressors:
            x = block(x, torch.cat([visible, x], dim=1), pos_masked, pos_k)
        latent_pred = self.norm_regressor(x)
        x = latent_pred + pos_masked
        for block in self.decoders:
            x = block(x)
        return self.head(self.norm_decoder(x)), latent_pred
