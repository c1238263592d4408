"""The seed's ClsHead: one linear classifier (DeepCluster, ODC, RotationPred, RelativeLoc). Parameter
names follow the seed (`fc_cls`) so its checkpoints load."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...registry import HEADS


@HEADS.register_module()
class ClsHead(nn.Module):
    """[pool ->] flatten -> fc_cls. `forward(x)` takes the 1-tuple a backbone or neck returns and gives
    `[scores]`; `loss(scores, labels, weight)` is the (optionally class-weighted) cross-entropy."""

    def __init__(self, with_avg_pool: bool = False, in_channels: int = 2048, num_classes: int = 1000):
        super().__init__()
        self.with_avg_pool, self.in_channels, self.num_classes = with_avg_pool, in_channels, num_classes
        self.fc_cls = nn.Linear(in_channels, num_classes)
        self.init_weights()

    def init_weights(self, generator: torch.Generator | None = None) -> None:
        """The seed's init: weights ~ N(0, 0.01), bias 0 (DeepCluster re-draws them after each clustering)."""
        nn.init.normal_(self.fc_cls.weight, 0.0, 0.01, generator=generator)
        nn.init.zeros_(self.fc_cls.bias)

    def forward(self, x: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        if len(x) != 1:
            raise ValueError(f"ClsHead takes one feature map, got {len(x)}")
        x = x[0]
        if self.with_avg_pool:
            x = F.adaptive_avg_pool2d(x, 1)
        return [self.fc_cls(x.flatten(1))]

    def loss(self, cls_score: list[torch.Tensor], labels: torch.Tensor,
             weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        scores = cls_score[0]
        with torch.no_grad():
            acc = (scores.argmax(dim=1) == labels).float().mean() * 100
        return dict(loss=F.cross_entropy(scores, labels, weight=weight), acc=acc)
