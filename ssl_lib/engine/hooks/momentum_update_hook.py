"""The seed's MomentumUpdateHook (BYOL): cosine schedule of the target network's momentum."""
from __future__ import annotations

import math

from ...registry import HOOKS
from .hook import Hook


@HOOKS.register_module()
class MomentumUpdateHook(Hook):
    """Before each update iteration k of K: m = end - (end - base) * (cos(pi * k / K) + 1) / 2, with
    `base` the algorithm's `base_momentum`; after it, the algorithm's `momentum_update()` moves the
    target weights towards the online ones (the optimizer step has run by then)."""

    def __init__(self, end_momentum: float = 1.0, update_interval: int = 1):
        self.end_momentum, self.update_interval = end_momentum, update_interval

    def before_train_iter(self, runner) -> None:
        if self.every_n_iters(runner, self.update_interval):
            model = runner.algorithm
            base = getattr(model, "base_momentum", None)
            if base is None:
                raise AttributeError(f"MomentumUpdateHook: {type(model).__name__} has no base_momentum")
            progress = runner.global_iter / runner.max_iters
            model.momentum = self.end_momentum - (self.end_momentum - base) * (math.cos(math.pi * progress) + 1) / 2

    def after_train_iter(self, runner) -> None:
        if self.every_n_iters(runner, self.update_interval):
            runner.algorithm.momentum_update()
