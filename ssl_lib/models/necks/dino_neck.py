"""DINO's projection head (Caron et al. 2021): an MLP to a bottleneck, L2 normalisation, and a
weight-normalised linear layer to K prototypes. Here a neck, as the seed calls what maps features to
the vectors a head compares; parameter names follow the DINO code (`mlp.*`, `last_layer.weight_g`,
`last_layer.weight_v`) so its checkpoints load."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ...registry import NECKS
from .utils import last_flat


class WeightNormLinear(nn.Module):
    """Linear without bias, W = g * V / |V| row by row (Salimans and Kingma 2016). `weight_g` starts at 1;
    DINO freezes it there (`norm_last_layer`), which keeps every prototype a unit vector and, the
    paper's authors report, stabilises training."""

    def __init__(self, in_features: int, out_features: int, freeze_norm: bool = True):
        super().__init__()
        linear = nn.Linear(in_features, out_features, bias=False)  # torch's default init for V, as DINO
        self.weight_v = nn.Parameter(linear.weight.detach().clone())
        self.weight_g = nn.Parameter(torch.ones(out_features, 1), requires_grad=not freeze_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight_g * self.weight_v / self.weight_v.norm(dim=1, keepdim=True))


@NECKS.register_module()
class DINONeck(nn.Module):
    """Pool -> [Linear (-> BN) -> GELU] x (num_layers - 1) -> Linear to `bottleneck_channels` -> L2 normalise
    -> WeightNormLinear to `out_channels`; from a ViT ([patch tokens, cls token]) it takes the cls
    token. Linear layers start from a truncated normal (std 0.02), biases at 0, as DINO's.
    Returns a 1-tuple like the seed's necks."""

    def __init__(self, in_channels: int, out_channels: int = 65536, hid_channels: int = 2048,
                 bottleneck_channels: int = 256, num_layers: int = 3, use_bn: bool = False,
                 norm_last_layer: bool = True, with_avg_pool: bool = True):
        super().__init__()
        if num_layers < 1:
            raise ConfigError(f"DINONeck: num_layers must be >= 1, got {num_layers}")
        self.in_channels, self.out_channels, self.with_avg_pool = in_channels, out_channels, with_avg_pool
        layers, width = [], in_channels
        for _ in range(num_layers - 1):
            layers += [nn.Linear(width, hid_channels), *([nn.BatchNorm1d(hid_channels)] if use_bn else []), nn.GELU()]
            width = hid_channels
        layers.append(nn.Linear(width, bottleneck_channels))
        self.mlp = nn.Sequential(*layers)
        for m in self.mlp.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.last_layer = WeightNormLinear(bottleneck_channels, out_channels, freeze_norm=norm_last_layer)

    def forward(self, x: tuple) -> tuple[torch.Tensor]:
        # a ViT's last output is [patch tokens, cls token]: DINO projects the cls token
        feat = x[-1][-1] if isinstance(x[-1], (list, tuple)) else last_flat(x, self.with_avg_pool)
        x = F.normalize(self.mlp(feat), dim=-1)
        return (self.last_layer(x),)
