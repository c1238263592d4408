"""DINO's weight-decay schedule: cosine from the optimizer's weight decay to a final one, by iteration."""
from __future__ import annotations

from ...errors import ConfigError
from ...registry import HOOKS
from ..schedules import annealing_cos
from .hook import Hook


@HOOKS.register_module()
class WeightDecayUpdateHook(Hook):
    """Before each iteration k of K, every parameter group that decays (weight_decay > 0 in the
    optimizer as built) gets wd_g * c(k), c going from 1 to end_weight_decay / optimizer.weight_decay
    along half a cosine (DINO: 0.04 -> 0.4 over the run); groups without decay stay at 0. Stateless:
    a resumed run recomputes the value from the iteration count."""

    def __init__(self, end_weight_decay: float):
        if not end_weight_decay >= 0:
            raise ConfigError(f"WeightDecayUpdateHook end_weight_decay={end_weight_decay!r} must be >= 0")
        self.end_weight_decay = end_weight_decay

    def setup(self, runner) -> None:
        base = runner.cfg.optimizer.get("weight_decay", 0.0)
        if not base > 0:
            raise ConfigError(f"WeightDecayUpdateHook needs optimizer.weight_decay > 0 to scale (it is {base!r})")
        self.end_ratio = self.end_weight_decay / base
        # read before a checkpoint's param groups (with scheduled values) replace the built ones
        self.base = [g["weight_decay"] for g in runner.optimizer.param_groups]

    def before_train_iter(self, runner) -> None:
        ratio = annealing_cos(1.0, self.end_ratio, runner.global_iter / runner.max_iters)
        for group, base in zip(runner.optimizer.param_groups, self.base):
            group["weight_decay"] = base * ratio
