"""DINO's teacher temperature schedule."""
from __future__ import annotations

from ...errors import ConfigError
from ...registry import HOOKS
from .hook import Hook


def teacher_temp_at(epoch: int, warmup_teacher_temp: float, teacher_temp: float, warmup_epochs: int) -> float:
    """DINO's schedule: over the first `warmup_epochs` epochs, evenly spaced from `warmup_teacher_temp`
    (epoch 0) to `teacher_temp` (epoch warmup_epochs - 1), as numpy.linspace; `teacher_temp` after."""
    if epoch >= warmup_epochs:
        return teacher_temp
    if warmup_epochs == 1:
        return warmup_teacher_temp
    return warmup_teacher_temp + (teacher_temp - warmup_teacher_temp) * epoch / (warmup_epochs - 1)


@HOOKS.register_module()
class DINOHook(Hook):
    """Before each epoch, sets the DINO head's `teacher_temp` by `teacher_temp_at` (a low temperature
    early sharpens the teacher less abruptly than it would the student at the start, which the paper
    found stabilises the first epochs). The teacher momentum is MomentumUpdateHook's."""

    priority = "VERY_HIGH"

    def __init__(self, warmup_teacher_temp: float = 0.04, teacher_temp: float = 0.04, warmup_epochs: int = 0):
        if warmup_epochs < 0 or min(warmup_teacher_temp, teacher_temp) <= 0:
            raise ConfigError(f"DINOHook: temperatures must be > 0 and warmup_epochs >= 0, got "
                              f"warmup_teacher_temp={warmup_teacher_temp}, teacher_temp={teacher_temp}, "
                              f"warmup_epochs={warmup_epochs}")
        self.warmup_teacher_temp, self.teacher_temp = warmup_teacher_temp, teacher_temp
        self.warmup_epochs = warmup_epochs

    def before_train_epoch(self, runner) -> None:
        runner.algorithm.head.teacher_temp = teacher_temp_at(runner.epoch, self.warmup_teacher_temp,
                                                             self.teacher_temp, self.warmup_epochs)
