"""The seed's SimSiamHook: the predictor learns at a fixed rate while the rest follow the schedule."""
from __future__ import annotations

from ...errors import ConfigError
from ...registry import HOOKS
from .hook import Hook


@HOOKS.register_module()
class SimSiamHook(Hook):
    """Puts `lr` back into every optimizer parameter group marked `fix_lr=True` (the config's
    `optimizer.paramwise_options={'predictor': dict(fix_lr=True)}`), after the LR updater has
    written the schedule's value; give it a priority after the LR updater's (the seed: 'HIGH').

    `adjust_by_epoch` said when the seed's LR updater wrote the lr (at each epoch's start for a
    by-epoch schedule); here the updater writes every group's lr before every iteration, so the
    fixed lr goes back before every iteration either way.
    """

    def __init__(self, fix_pred_lr: bool, lr: float, adjust_by_epoch: bool = True):
        self.fix_pred_lr, self.lr, self.adjust_by_epoch = fix_pred_lr, lr, adjust_by_epoch

    def _fixed_groups(self, runner) -> list[dict]:
        return [g for g in runner.optimizer.param_groups if g.get("fix_lr")]

    def before_run(self, runner) -> None:
        if self.fix_pred_lr and not self._fixed_groups(runner):
            raise ConfigError("SimSiamHook(fix_pred_lr=True): no optimizer parameter group has fix_lr=True; set "
                              "optimizer.paramwise_options={'predictor': dict(fix_lr=True)} (a regex that matches "
                              "the predictor's parameter names, e.g. head.predictor.fc0.weight)")

    def before_train_iter(self, runner) -> None:
        if self.fix_pred_lr:
            for group in self._fixed_groups(runner):
                group["lr"] = self.lr
