"""The hook base class and the seed's priorities (mmcv's `Priority`)."""
from __future__ import annotations

from ...errors import ConfigError

PRIORITIES = {"HIGHEST": 0, "VERY_HIGH": 10, "HIGH": 30, "ABOVE_NORMAL": 40, "NORMAL": 50,
              "BELOW_NORMAL": 60, "LOW": 70, "VERY_LOW": 90, "LOWEST": 100}


def get_priority(priority: int | str) -> int:
    """A priority as a number (lower runs first): an int in 0..100 or one of PRIORITIES' names."""
    if isinstance(priority, str):
        if priority.upper() not in PRIORITIES:
            raise ConfigError(f"hook priority {priority!r} is not one of {', '.join(PRIORITIES)} or 0..100")
        return PRIORITIES[priority.upper()]
    if isinstance(priority, int) and 0 <= priority <= 100:
        return priority
    raise ConfigError(f"hook priority {priority!r} is not one of {', '.join(PRIORITIES)} or 0..100")


class Hook:
    """Base hook; the runner calls each method at the point its name says, hooks in priority order.

    A hook whose state must survive a restart returns it from `state_dict()`; each rank's state is
    saved in the checkpoint and handed back to `load_state_dict` on resume. A hook that adds buffers
    to the model registers them in `setup`, before the checkpoint is loaded into the model. The
    `val` events frame an evaluation (the workflow's 'val' phase, run by EvalHook).
    """

    priority = "NORMAL"

    def setup(self, runner) -> None: ...

    def before_run(self, runner) -> None: ...

    def after_run(self, runner) -> None: ...

    def before_train_epoch(self, runner) -> None: ...

    def after_train_epoch(self, runner) -> None: ...

    def before_train_iter(self, runner) -> None: ...

    def after_train_iter(self, runner) -> None: ...

    def before_val_epoch(self, runner) -> None: ...

    def after_val_epoch(self, runner) -> None: ...

    def metrics(self) -> dict:
        """Figures this hook adds to train_metrics.json."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...

    @staticmethod
    def every_n_iters(runner, n: int) -> bool:
        """True on every n-th iteration (counting from 1), as mmcv's Hook.every_n_iters."""
        return n > 0 and (runner.global_iter + 1) % n == 0

    @staticmethod
    def every_n_epochs(runner, n: int) -> bool:
        return n > 0 and (runner.epoch + 1) % n == 0
