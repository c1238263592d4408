"""The seed's DenseCLHook: the dense loss is switched off for the first iterations."""
from __future__ import annotations

from ...errors import ConfigError
from ...registry import HOOKS
from .hook import Hook


@HOOKS.register_module()
class DenseCLHook(Hook):
    """Before each iteration: `loss_lambda = 0` while global_iter < start_iters, then the configured
    value (read from the algorithm before the run), as in the authors' code."""

    def __init__(self, start_iters: int = 1000):
        self.start_iters = start_iters
        self.loss_lambda: float | None = None

    def before_run(self, runner) -> None:
        model = runner.algorithm
        if not hasattr(model, "loss_lambda"):
            raise ConfigError(f"custom_hooks: DenseCLHook needs an algorithm with a loss_lambda (DenseCL), "
                              f"not {type(model).__name__}")
        self.loss_lambda = model.loss_lambda

    def before_train_iter(self, runner) -> None:
        runner.algorithm.loss_lambda = self.loss_lambda if runner.global_iter >= self.start_iters else 0.0
