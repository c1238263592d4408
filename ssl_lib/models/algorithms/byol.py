"""BYOL (Grill et al. 2020): an online network predicts a slow-moving target network's projection."""
from __future__ import annotations

import copy

import torch
from torch import nn

from ...errors import ConfigError
from ...registry import ALGORITHMS
from .base import BaseAlgorithm


def check_predictor(neck: nn.Module, head: nn.Module) -> None:
    """The head's predictor reads the projector's output: refuse widths that differ, naming the fix."""
    out = getattr(neck, "out_channels", None)
    want = getattr(getattr(head, "predictor", None), "in_channels", None)
    if out is not None and want is not None and want != out:
        raise ConfigError(f"model.head.predictor.in_channels={want} does not match the neck's output width {out}; "
                          f"set model.head.predictor.in_channels={out}")


@ALGORITHMS.register_module()
class BYOL(BaseAlgorithm):
    """Online = backbone + neck (projector), then the head's predictor; target = a copy of the online
    backbone + neck that gets no gradient and follows by `momentum_update()`.

    `base_momentum` is the momentum at the start; MomentumUpdateHook sets `momentum` before each
    iteration (cosine rule up to its end_momentum) and calls `momentum_update()` after it. Module
    names follow the seed (`online_net`, `target_net`; `backbone`/`neck` are the online ones).
    """

    num_views = 2

    def __init__(self, backbone: dict, neck: dict, head: dict, base_momentum: float = 0.996):
        super().__init__(backbone, neck, head)
        check_predictor(self.neck, self.head)
        self.online_net = nn.Sequential(self.backbone, self.neck)
        self.target_net = copy.deepcopy(self.online_net)
        for p in self.target_net.parameters():
            p.requires_grad = False
        self.base_momentum = self.momentum = base_momentum

    @torch.no_grad()
    def momentum_update(self) -> None:
        """target <- m * target + (1 - m) * online, for every parameter."""
        for p_online, p_target in zip(self.online_net.parameters(), self.target_net.parameters()):
            p_target.mul_(self.momentum).add_(p_online.detach(), alpha=1.0 - self.momentum)

    def forward_train(self, img: list[torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        online_1, online_2 = (self.online_net(v)[0] for v in img[:2])
        with torch.no_grad():
            target_1, target_2 = (self.target_net(v)[0] for v in img[:2])
        # each view's prediction of the other view's target; the seed's scale: 2 * (-cos - cos)
        loss = 2.0 * (self.head(online_1, target_2)["loss"] + self.head(online_2, target_1)["loss"])
        return dict(loss=loss)
