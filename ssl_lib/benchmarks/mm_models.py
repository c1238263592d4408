"""Our backbones inside MMDetection and MMSegmentation, the seed's engines for the detection and
segmentation benchmarks.

`SSLResNet` is our ResNet (small stems and reduced widths included) as an mmdet / mmseg backbone:
`out_indices` count layer1..layer4 as 0..3, as theirs do; `num_stages=3` drops layer4 (R50-C4, where
the RoI head holds it); `init_cfg=dict(type='Pretrained', checkpoint=<extract's backbone.pth>)` loads
the weights with `weights_only=True` and every key must fit. `SSLResLayer` is layer4 of the same
backbone as mmdet's C4 shared head, loaded from the same file (`layer4.*`).

At base width 64 with the ImageNet stem our state dict is torchvision's, which mmdet's and mmseg's
own `ResNet` also use: the seed's exact configs load extract's backbone.pth into their ResNet.

    from ssl_lib.benchmarks.mm_models import register
    register()  # idempotent: the classes join mmdet's and mmseg's MODELS registries
"""
from __future__ import annotations

import io

import torch
from torch import nn

from .. import storage
from ..errors import ConfigError, DataError
from ..models.backbones import ResNet


def is_r50(backbone: dict) -> bool:
    """Extract's ResNet-50 at base width 64 with the ImageNet stem, whose keys are mmdet's / mmseg's own
    ResNet's: the seed's exact configs take it."""
    return (backbone.get("type") == "ResNet" and backbone.get("depth") == 50
            and backbone.get("base_channels", 64) == 64 and backbone.get("stem", "imagenet") == "imagenet")


def _norm_cfg(norm_cfg: dict | None) -> tuple[dict, bool]:
    """mmdet's norm_cfg carries `requires_grad`; our norm_layer takes the type and BN's own arguments."""
    cfg = dict(norm_cfg or dict(type="BN"))
    requires_grad = cfg.pop("requires_grad", True)
    return cfg, requires_grad


def load_backbone_state(checkpoint: str) -> dict:
    """A backbone state dict from extract's backbone.pth (or an artifact folder holding one), or from
    a training checkpoint's `state_dict` with `backbone.` keys."""
    path = checkpoint if checkpoint.endswith((".pth", ".pt")) else storage.join(checkpoint, "backbone.pth")
    try:
        state = torch.load(io.BytesIO(storage.read_bytes(path)), map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise DataError(f"backbone weights not found: {path}") from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if any(k.startswith("backbone.") for k in state):
        state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    return state


def _load(module: nn.Module, state: dict, checkpoint: str, prefix: str = "") -> None:
    """Load `state` (keys under `prefix`) into module, naming what does not fit."""
    own = module.state_dict()
    picked = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix) and k[len(prefix):] in own}
    missing = sorted(set(own) - set(picked))
    if missing:
        raise DataError(f"{checkpoint} does not fit {type(module).__name__}: missing {len(missing)} keys, e.g. "
                        f"{prefix}{missing[0]} (is it the backbone this config describes?)")
    bad = [k for k, v in picked.items() if v.shape != own[k].shape]
    if bad:
        raise DataError(f"{checkpoint}: {prefix}{bad[0]} has shape {tuple(picked[bad[0]].shape)}, the model "
                        f"{tuple(own[bad[0]].shape)} (is it the backbone this config describes?)")
    module.load_state_dict(picked, strict=True)


class SSLResNet(ResNet):
    def __init__(self, depth: int, base_channels: int = 64, stem: str = "imagenet", num_stages: int = 4,
                 out_indices=(0, 1, 2, 3), frozen_stages: int = -1, norm_cfg: dict | None = None,
                 norm_eval: bool = False, zero_init_residual: bool = False, in_channels: int = 3,
                 init_cfg: dict | None = None):
        if num_stages not in (3, 4):
            raise ConfigError(f"SSLResNet num_stages {num_stages!r} must be 3 (C4: layer4 in the RoI head) or 4")
        if any(i not in range(num_stages) for i in out_indices):
            raise ConfigError(f"SSLResNet out_indices {tuple(out_indices)!r} must be in 0..{num_stages - 1} "
                              f"(layer1..layer{num_stages})")
        cfg, requires_grad = _norm_cfg(norm_cfg)
        self.num_stages = num_stages
        super().__init__(depth, in_channels=in_channels, base_channels=base_channels, stem=stem,
                         out_indices=tuple(i + 1 for i in out_indices), frozen_stages=-1, norm_cfg=cfg,
                         norm_eval=norm_eval, zero_init_residual=zero_init_residual)
        if num_stages == 3:
            del self.layer4
        if not requires_grad:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.requires_grad_(False)
        self.frozen_stages = frozen_stages
        self._freeze_stages()
        self.init_cfg = init_cfg

    def _stages(self) -> list[nn.Module]:  # layer4 may be gone
        layers = [getattr(self, f"layer{i}") for i in range(1, getattr(self, "num_stages", 4) + 1)]
        return [nn.ModuleList([self.conv1, self.bn1]), *layers]

    def init_weights(self) -> None:
        """The Pretrained init_cfg: extract's weights, every key of this backbone present and of its shape."""
        cfg = self.init_cfg or {}
        if cfg.get("type") != "Pretrained":
            return
        checkpoint = cfg.get("checkpoint")
        if not checkpoint:
            raise ConfigError("SSLResNet init_cfg type 'Pretrained' needs a checkpoint")
        _load(self, load_backbone_state(checkpoint), checkpoint)


class SSLResLayer(nn.Module):
    """layer4 of our ResNet on RoI features: mmdet's C4 shared head (`ResLayer`) for our backbones."""

    def __init__(self, depth: int, base_channels: int = 64, stage: int = 3, stride: int = 2,
                 norm_cfg: dict | None = None, norm_eval: bool = False, init_cfg: dict | None = None):
        super().__init__()
        if stage != 3 or stride != 2:
            raise ConfigError("SSLResLayer is layer4 (stage=3) at stride 2, as the seed's R50-C4")
        cfg, requires_grad = _norm_cfg(norm_cfg)
        full = ResNet(depth, base_channels=base_channels, norm_cfg=cfg)
        self.layer4 = full.layer4
        self.out_channels = full.feat_channels(4)
        self.norm_eval = norm_eval
        if not requires_grad:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.requires_grad_(False)
        self.init_cfg = init_cfg

    def init_weights(self) -> None:
        cfg = self.init_cfg or {}
        if cfg.get("type") == "Pretrained":
            _load(self, load_backbone_state(cfg["checkpoint"]), cfg["checkpoint"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(x)

    def train(self, mode: bool = True) -> "SSLResLayer":
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self


_registered = False


def register() -> None:
    """Add SSLResNet (mmdet and mmseg) and SSLResLayer (mmdet) to the engines' registries, once."""
    global _registered
    if _registered:
        return
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmseg.registry import MODELS as MMSEG_MODELS

    MMDET_MODELS.register_module(name="SSLResNet", module=SSLResNet, force=True)
    MMDET_MODELS.register_module(name="SSLResLayer", module=SSLResLayer, force=True)
    MMSEG_MODELS.register_module(name="SSLResNet", module=SSLResNet, force=True)
    _registered = True
