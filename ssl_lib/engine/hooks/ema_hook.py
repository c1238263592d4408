"""mmcv's EMAHook: an exponential moving average of the model's parameters, used for evaluation and
written in the checkpoints."""
from __future__ import annotations

from ...errors import ConfigError
from ...registry import HOOKS
from .hook import Hook


@HOOKS.register_module()
class EMAHook(Hook):
    """After every `interval`-th iteration k (0-based): ema = (1 - m) * ema + m * param, with
    m = min(momentum ** interval, (1 + k) / (warm_up + k)), the averages kept in the model's buffers
    `ema_<parameter name>` (so they are saved and resumed with it).

    As mmcv's: after each epoch the averaged weights are swapped into the model, so the epoch's
    evaluation and checkpoint see them (the training weights wait in the buffers), and swapped back
    before the next epoch. Every evaluation (an iteration runner's too) runs on the averaged weights.
    Under IterBasedRunner an epoch is a pass over the data: a checkpoint written within one holds the
    training weights (the averages in the buffers), the final one the averages.
    The default priority runs after the optimizer step and before evaluation and the checkpoint
    (mmcv: "EMAHook takes priority over EvalHook and CheckpointHook"). Which weights the model
    holds is part of the hook's state, so a resume is exact whatever the priority.
    `resume_from`: a checkpoint to resume from when the config's `resume_from` is not set.
    """

    priority = "ABOVE_NORMAL"

    def __init__(self, momentum: float = 0.0002, interval: int = 1, warm_up: int = 100,
                 resume_from: str | None = None):
        if not (isinstance(interval, int) and interval > 0):
            raise ConfigError(f"EMAHook: interval = {interval!r}: must be a positive int")
        if not 0 < momentum < 1:
            raise ConfigError(f"EMAHook: momentum = {momentum!r}: must be in (0, 1)")
        self.momentum, self.interval, self.warm_up = momentum ** interval, interval, warm_up
        self.resume_from = resume_from
        self.swapped = False  # the model holds the averaged weights
        self._swapped_before_val = False
        self.params: dict = {}
        self.buffers: dict = {}

    def setup(self, runner) -> None:
        model = runner.algorithm
        self.params = dict(model.named_parameters())
        for name, param in self.params.items():
            buffer_name = "ema_" + name.replace(".", "_")  # a buffer name may not hold dots
            model.register_buffer(buffer_name, param.detach().clone())
        self.buffers = {name: model.get_buffer("ema_" + name.replace(".", "_")) for name in self.params}
        if self.resume_from and not runner.resume_from:
            runner.resume_from = self.resume_from

    def after_train_iter(self, runner) -> None:
        step = runner.global_iter
        if step % self.interval:
            return
        m = min(self.momentum, (1 + step) / (self.warm_up + step))
        for name, param in self.params.items():
            self.buffers[name].mul_(1 - m).add_(param.detach(), alpha=m)

    def _hold(self, averaged: bool) -> None:
        if self.swapped == averaged:
            return
        for name, param in self.params.items():
            held = param.detach().clone()
            param.data.copy_(self.buffers[name])
            self.buffers[name].copy_(held)
        self.swapped = averaged

    def before_train_epoch(self, runner) -> None:
        self._hold(False)

    def after_train_epoch(self, runner) -> None:
        self._hold(True)

    def before_val_epoch(self, runner) -> None:
        self._swapped_before_val = self.swapped
        self._hold(True)

    def after_val_epoch(self, runner) -> None:
        self._hold(self._swapped_before_val)

    def state_dict(self) -> dict:
        return {"swapped": self.swapped}

    def load_state_dict(self, state: dict) -> None:
        self.swapped = bool(state.get("swapped", False))
