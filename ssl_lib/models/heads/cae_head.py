"""CAE's head: the frozen DALL-E tokenizer that gives each masked patch its target token, and the loss."""
from __future__ import annotations

import torch
from torch import nn

from ...registry import HEADS
from ..dalle import DALLEEncoder
from ..losses import cae_loss


@HEADS.register_module()
class CAEHead(nn.Module):
    """loss = cross-entropy(decoder logits, tokens of the masked patches) + lambd * MSE(latent prediction,
    teacher latents); `loss_main` and `loss_align` are the two terms.

    tokenizer_path: the DALL-E encoder's state dict (local or s3://), as the seed's, read at the first
    training step (so that a config builds and is checked without it); None keeps the random tokenizer
    drawn from `tokenizer.seed`. tokenizer: DALLEEncoder's size (n_hid, n_blk_per_group, vocab_size) and
    seed, for small random tokenizers; OpenAI's weights need the defaults."""

    def __init__(self, tokenizer_path: str | None = "cae_ckpt/encoder_stat_dict.pth", lambd: float = 2.0,
                 tokenizer: dict | None = None):
        super().__init__()
        self.lambd, self.tokenizer_path = lambd, tokenizer_path
        self.tokenizer = DALLEEncoder(**(tokenizer or {}))
        self.num_classes = self.tokenizer.vocab_size
        self._tokenizer_loaded = tokenizer_path is None

    def forward(self, img_target: torch.Tensor, logits: torch.Tensor, latent_pred: torch.Tensor,
                latent_target: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """img_target: the tokenizer's view, mapped by map_pixels; logits [B, Nm, K] and the latents
        [B, Nm, C] of the masked patches, in patch order; mask [B, L] bool, 1 = masked."""
        if not self._tokenizer_loaded:
            self.tokenizer.load(self.tokenizer_path)
            self._tokenizer_loaded = True
        target = self.tokenizer.tokens(img_target)[mask].reshape(logits.shape[:-1])
        main, align = cae_loss(logits, target, latent_pred, latent_target, self.lambd)
        return dict(loss=main + align, loss_main=main.detach(), loss_align=align.detach())
