"""DINO's loss head: the teacher's centre and temperatures, and the cross-entropy over crop pairs."""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from ...errors import ConfigError
from ...registry import HEADS
from ..losses import dino
from ..utils import get_dist_info


@HEADS.register_module()
class DINOHead(nn.Module):
    """Student logits of `sum(num_crops)` crops and teacher logits of the `num_crops[0]` global crops,
    each crop-major ([crop 0 batch, crop 1 batch, ...]), to losses.dino with the current centre.
    Then the centre moves: c <- m c + (1 - m) mean(teacher logits), the mean over the global crops and
    the global batch (summed over processes), as the paper's eq. 4.

    `center` is a buffer, so checkpoints carry it. `teacher_temp` is set each epoch by DINOHook
    (its linear warm-up); it starts at the value given here.
    """

    def __init__(self, out_channels: int = 65536, num_crops: list[int] = (2, 6), student_temp: float = 0.1,
                 teacher_temp: float = 0.04, center_momentum: float = 0.9):
        super().__init__()
        self.num_crops = [int(n) for n in num_crops]
        if not self.num_crops or self.num_crops[0] < 1 or sum(self.num_crops) < 2:
            raise ConfigError(f"DINOHead: num_crops={list(num_crops)} must start with the number of global crops "
                              "(>= 1) and hold >= 2 crops in all, e.g. [2, 6]")
        self.out_channels = out_channels
        self.student_temp, self.teacher_temp, self.center_momentum = student_temp, teacher_temp, center_momentum
        self.register_buffer("center", torch.zeros(1, out_channels))

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> dict[str, torch.Tensor]:
        loss = dino(student.chunk(sum(self.num_crops)), teacher.chunk(self.num_crops[0]), self.center,
                    self.student_temp, self.teacher_temp)
        self.update_center(teacher)
        return dict(loss=loss)

    @torch.no_grad()
    def update_center(self, teacher: torch.Tensor) -> None:
        total = teacher.sum(dim=0, keepdim=True)
        count = torch.tensor(float(teacher.shape[0]), device=teacher.device)
        if get_dist_info()[1] > 1:
            dist.all_reduce(total)
            dist.all_reduce(count)
        self.center.mul_(self.center_momentum).add_(total / count, alpha=1 - self.center_momentum)
