"""The seed's NonLinearNeck (SimCLR, BYOL, SimSiam, Barlow Twins). Parameter names follow the seed
(`fc0`, `bn0`, `fc1`, `bn1`, ...) so its checkpoints load."""
from __future__ import annotations

import torch
from torch import nn

from ...errors import ConfigError
from ...registry import NECKS
from .utils import last_flat

NORM_1D = {"BN": nn.BatchNorm1d, "SyncBN": nn.SyncBatchNorm}


def _norm(norm_cfg: dict, channels: int, affine: bool = True) -> nn.Module:
    cfg = dict(norm_cfg)
    name = cfg.pop("type", None)
    if name not in NORM_1D:
        raise ConfigError(f"NonLinearNeck: norm_cfg type {name!r} is not one of {', '.join(NORM_1D)}")
    return NORM_1D[name](channels, affine=affine, **cfg)


def _init_linear(module: nn.Module, init_cfg: dict | None) -> None:
    """The seed's `init_cfg=dict(type='Kaiming', distribution='uniform', layer=['Linear'])` (mmcv's
    KaimingInit: a=0, mode='fan_out', nonlinearity='relu', bias=0); None keeps torch's defaults."""
    if init_cfg is None:
        return
    cfg = dict(init_cfg)
    kind, layers = cfg.pop("type", None), cfg.pop("layer", ["Linear"])
    layers = [layers] if isinstance(layers, str) else list(layers)
    if kind != "Kaiming" or layers != ["Linear"]:
        raise ConfigError(f"NonLinearNeck: init_cfg {init_cfg!r} is not supported; use None or "
                          "dict(type='Kaiming', layer=['Linear'], distribution='uniform'|'normal')")
    distribution, bias = cfg.pop("distribution", "normal"), cfg.pop("bias", 0.0)
    kaiming = dict(a=cfg.pop("a", 0.0), mode=cfg.pop("mode", "fan_out"),
                   nonlinearity=cfg.pop("nonlinearity", "relu"))
    if cfg or distribution not in ("uniform", "normal"):
        raise ConfigError(f"NonLinearNeck: init_cfg {init_cfg!r}: unknown keys {sorted(cfg)} or distribution "
                          f"{distribution!r} (uniform or normal)")
    for m in module.modules():
        if isinstance(m, nn.Linear):
            (nn.init.kaiming_uniform_ if distribution == "uniform" else nn.init.kaiming_normal_)(m.weight, **kaiming)
            if m.bias is not None:
                nn.init.constant_(m.bias, bias)


@NECKS.register_module()
class NonLinearNeck(nn.Module):
    """Pool -> fc0 -> bn0 -> [relu -> fc_i -> bn_i] for i = 1..num_layers-1. Hidden fcs have a bias
    when `with_bias`, the last one when `with_last_bias`; the last BN exists when `with_last_bn`
    (learnable affine when `with_last_bn_affine`). BN is 1-d, `norm_cfg` type BN or SyncBN.
    Returns a 1-tuple like the seed."""

    def __init__(self, in_channels: int, hid_channels: int, out_channels: int, num_layers: int = 2,
                 with_bias: bool = False, with_last_bn: bool = True, with_last_bn_affine: bool = True,
                 with_last_bias: bool = False, with_avg_pool: bool = True, norm_cfg: dict | None = None,
                 init_cfg: dict | None = None):
        super().__init__()
        if num_layers < 1:
            raise ConfigError(f"NonLinearNeck: num_layers must be >= 1, got {num_layers}")
        last = num_layers - 1
        self.in_channels, self.with_avg_pool = in_channels, with_avg_pool
        self.out_channels = out_channels if last else hid_channels  # the seed's fc0 always gives hid_channels
        norm_cfg = norm_cfg or dict(type="SyncBN")
        self.names = []  # (fc name, bn name or None), in order; looked up at forward time, so that
        for i in range(num_layers):  # a module swapped later (SyncBN reverted to BN) is the one used
            is_last = i == last and i > 0
            width = out_channels if is_last else hid_channels
            self.add_module(f"fc{i}", nn.Linear(in_channels if i == 0 else hid_channels, width,
                                                bias=with_last_bias if is_last else with_bias))
            bn = None
            if not is_last or with_last_bn:
                bn = f"bn{i}"
                self.add_module(bn, _norm(norm_cfg, width, affine=with_last_bn_affine if is_last else True))
            self.names.append((f"fc{i}", bn))
        self.relu = nn.ReLU(inplace=True)
        _init_linear(self, init_cfg)

    def forward(self, x: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor]:
        x = last_flat(x, self.with_avg_pool)
        for i, (fc, bn) in enumerate(self.names):
            if i:
                x = self.relu(x)
            x = getattr(self, fc)(x)
            if bn is not None:
                x = getattr(self, bn)(x)
        return (x,)
