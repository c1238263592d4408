"""Hooks: behaviour between iterations (momentum schedules, re-clustering, ...), built from HOOKS."""
from __future__ import annotations

import math

from ..registry import HOOKS


class Hook:
    """Base hook; the runner calls each method at the point its name says."""

    def before_run(self, runner) -> None: ...

    def before_train_epoch(self, runner) -> None: ...

    def after_train_iter(self, runner) -> None: ...

    def after_train_epoch(self, runner) -> None: ...


@HOOKS.register_module()
class MomentumUpdateHook(Hook):
    """Cosine schedule of the momentum-encoder coefficient from `momentum` to `end_momentum`
    (BYOL, MoCo v3); the algorithm reads `model.momentum` at each step."""

    def __init__(self, end_momentum: float = 1.0, update_interval: int = 1):
        self.end_momentum = end_momentum
        self.update_interval = update_interval
        self.base = None

    def before_run(self, runner) -> None:
        self.base = runner.algorithm.momentum

    def after_train_iter(self, runner) -> None:
        if runner.global_iter % self.update_interval:
            return
        progress = runner.global_iter / max(1, runner.max_iters)
        runner.algorithm.momentum = self.end_momentum - (self.end_momentum - self.base) * (
            math.cos(math.pi * progress) + 1) / 2
