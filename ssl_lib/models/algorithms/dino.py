"""DINO (Caron et al. 2021): self-distillation with no labels. A student matches, on every crop, the
centred and sharpened output of a momentum teacher that sees only the global crops."""
from __future__ import annotations

import copy
import itertools

import torch
from torch import nn

from ...errors import ConfigError
from ...registry import ALGORITHMS
from .base import BaseAlgorithm


@ALGORITHMS.register_module()
class DINO(BaseAlgorithm):
    """Student = backbone + neck (DINONeck); teacher = a copy of both that gets no gradient and follows
    by `momentum_update()` (MomentumUpdateHook: cosine from `base_momentum` to 1, as DINO's schedule).
    The student runs the backbone once per run of same-size crops; the teacher once on the global
    crops. The head (DINOHead) holds the centre and the temperatures; DINOHook warms the teacher's
    temperature up. Freezing the last layer in the first epoch is `optimizer_config.frozen_layers_cfg`
    = {'neck.last_layer': <iterations per epoch>}.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict, base_momentum: float = 0.996):
        super().__init__(backbone, neck, head)
        out, want = getattr(self.neck, "out_channels", None), getattr(self.head, "out_channels", None)
        if out is not None and want is not None and want != out:
            raise ConfigError(f"model.head.out_channels={want} does not match the neck's output width {out}; "
                              f"set model.head.out_channels={out}")
        self.student = nn.Sequential(self.backbone, self.neck)
        self.teacher = copy.deepcopy(self.student)
        for p in self.teacher.parameters():
            p.requires_grad = False
        self.base_momentum = self.momentum = base_momentum

    def check_data(self, num_samples: int, global_batch: int, num_views: int | None) -> None:
        super().check_data(num_samples, global_batch, num_views)
        crops = sum(self.head.num_crops)
        if num_views is not None and num_views != crops:
            raise ConfigError(f"DINO: data.train.num_views gives {num_views} views per sample but "
                              f"model.head.num_crops={self.head.num_crops} sums to {crops}; set both from one "
                              f"num_crops list")

    @torch.no_grad()
    def momentum_update(self) -> None:
        """teacher <- m * teacher + (1 - m) * student, for every parameter."""
        for p_student, p_teacher in zip(self.student.parameters(), self.teacher.parameters()):
            p_teacher.mul_(self.momentum).add_(p_student.detach(), alpha=1.0 - self.momentum)

    def forward_train(self, img: list[torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        student = torch.cat([self.student(torch.cat(list(views)))[0]
                             for _, views in itertools.groupby(img, key=lambda v: v.shape[-2:])])
        with torch.no_grad():
            teacher = self.teacher(torch.cat(img[:self.head.num_crops[0]]))[0]
        return self.head(student, teacher)
