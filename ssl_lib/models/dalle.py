"""The DALL-E dVAE encoder (Ramesh et al. 2021) as CAE's and BEiT's tokenizer: an image mapped by
`map_pixels` (ssl_lib.data.datasets.cae, where the data gets it) -> one of `vocab_size` visual tokens
per 8 x 8 pixels (the argmax of its logits).

Module and parameter names are OpenAI's (`blocks.input.w`, `blocks.group_1.block_1.res_path.conv_1.w`,
..., `blocks.output.conv.b`), so the released encoder's state dict (the seed's
`cae_ckpt/encoder_stat_dict.pth`) loads strictly."""
from __future__ import annotations

import io
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from .. import storage
from ..errors import ConfigError, DataError

WEIGHTS_HELP = ("download the DALL-E encoder weights the seed's CAE README links "
                "(https://download.openmmlab.com/mmselfsup/cae/dalle_encoder.pth) to that path (a local file or an "
                "s3:// URI), or set model.head.tokenizer_path=None for a randomly initialised tokenizer")


class Conv2d(nn.Module):
    """OpenAI's convolution: weight `w` and bias `b`, 'same' padding; `w` drawn N(0, 1 / fan_in)."""

    def __init__(self, n_in: int, n_out: int, kw: int, generator: torch.Generator | None = None):
        super().__init__()
        self.w = nn.Parameter(torch.randn(n_out, n_in, kw, kw, generator=generator) / (n_in * kw * kw) ** 0.5)
        self.b = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.w, self.b, padding=(self.w.shape[-1] - 1) // 2)


class EncoderBlock(nn.Module):
    """A residual block: identity (a 1x1 conv when the width changes) + post_gain * (relu-conv x 4)."""

    def __init__(self, n_in: int, n_out: int, n_layers: int, generator: torch.Generator | None = None):
        super().__init__()
        hid = n_out // 4
        self.post_gain = 1 / n_layers ** 2  # keeps the sum of the residual branches near the identity
        self.id_path = Conv2d(n_in, n_out, 1, generator) if n_in != n_out else nn.Identity()
        self.res_path = nn.Sequential(OrderedDict([
            ("relu_1", nn.ReLU()), ("conv_1", Conv2d(n_in, hid, 3, generator)),
            ("relu_2", nn.ReLU()), ("conv_2", Conv2d(hid, hid, 3, generator)),
            ("relu_3", nn.ReLU()), ("conv_3", Conv2d(hid, hid, 3, generator)),
            ("relu_4", nn.ReLU()), ("conv_4", Conv2d(hid, n_out, 1, generator))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.id_path(x) + self.post_gain * self.res_path(x)


class DALLEEncoder(nn.Module):
    """A 7x7 conv to n_hid, four groups of `n_blk_per_group` blocks (widths n_hid x 1, 2, 4, 8, a 2x2
    max-pool after each of the first three), then ReLU and a 1x1 conv to `vocab_size` logits:
    [B, 3, H, W] -> [B, vocab_size, H / 8, W / 8]. OpenAI's encoder is n_hid 256, 2 blocks, 8192.

    Frozen: no parameter takes a gradient and the module stays in eval mode. The weights are a random
    draw from `seed` (the same tokenizer on every process and every run) until `load(path)`."""

    def __init__(self, n_hid: int = 256, n_blk_per_group: int = 2, vocab_size: int = 8192, seed: int = 0):
        super().__init__()
        if n_hid < 4 or n_hid % 4 or n_blk_per_group < 1 or vocab_size < 2:
            raise ConfigError(f"DALL-E tokenizer: n_hid={n_hid} must be a multiple of 4, n_blk_per_group="
                              f"{n_blk_per_group} >= 1 and vocab_size={vocab_size} >= 2")
        self.vocab_size = vocab_size
        gen = torch.Generator().manual_seed(seed)
        n_layers = 4 * n_blk_per_group
        widths = [n_hid, n_hid, 2 * n_hid, 4 * n_hid, 8 * n_hid]
        groups = []
        for g in range(4):
            blocks = [(f"block_{i + 1}", EncoderBlock(widths[g] if i == 0 else widths[g + 1], widths[g + 1], n_layers,
                                                      gen)) for i in range(n_blk_per_group)]
            if g < 3:
                blocks.append(("pool", nn.MaxPool2d(kernel_size=2)))
            groups.append((f"group_{g + 1}", nn.Sequential(OrderedDict(blocks))))
        self.blocks = nn.Sequential(OrderedDict([
            ("input", Conv2d(3, n_hid, 7, gen)), *groups,
            ("output", nn.Sequential(OrderedDict([("relu", nn.ReLU()),
                                                  ("conv", Conv2d(8 * n_hid, vocab_size, 1, gen))])))]))
        for p in self.parameters():
            p.requires_grad = False
        self.eval()

    def load(self, path: str) -> None:
        """OpenAI's encoder weights (its state dict, or one under `state_dict` / an `encoder.` prefix)."""
        if not storage.exists(path):
            raise ConfigError(f"model.head.tokenizer_path={path!r}: no such file. CAE's targets are the DALL-E "
                              f"dVAE's tokens: {WEIGHTS_HELP}")
        try:
            state = torch.load(io.BytesIO(storage.read_bytes(path)), map_location="cpu", weights_only=True)
        except Exception as err:  # weights_only refuses anything but tensors and plain containers
            raise DataError(f"{path} is not a loadable state dict (weights_only=True): {err}; "
                            f"OpenAI's pickled encoder.pkl must be saved as its state_dict() first") from err
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise DataError(f"{path} holds a {type(state).__name__}, not a state dict")
        if state and all(k.startswith("encoder.") for k in state):
            state = {k.removeprefix("encoder."): v for k, v in state.items()}
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as err:
            lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
            raise DataError(f"{path} does not fit a DALL-E encoder with n_hid / n_blk_per_group / vocab_size as "
                            f"configured in model.head.tokenizer: {' '.join(lines[1:3])[:400]}") from err

    def train(self, mode: bool = True) -> "DALLEEncoder":
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, vocab_size, H / 8, W / 8] of an image already mapped by `map_pixels`, in float32."""
        with torch.autocast(x.device.type, enabled=False):  # channels-last: about 2x faster convolutions on CPU
            return self.blocks(x.float().contiguous(memory_format=torch.channels_last))

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The visual token of each 8 x 8 cell, row by row: [B, (H / 8) * (W / 8)] long."""
        return self(x).argmax(dim=1).flatten(1)
