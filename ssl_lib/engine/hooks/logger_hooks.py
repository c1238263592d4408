"""The seed's logger hooks (`log_config.hooks`): the text log (train.log) and TensorBoard event files
beside it, both on rank 0, every `log_config.interval` iterations."""
from __future__ import annotations

from ...registry import HOOKS
from .hook import Hook


def momentum_of(group: dict) -> float | None:
    """SGD's `momentum`, Adam's `betas[0]`; None for an optimizer without either."""
    if "momentum" in group:
        return group["momentum"]
    return group["betas"][0] if "betas" in group else None


@HOOKS.register_module(name="TextLoggerHook")
class LoggerHook(Hook):
    priority = "VERY_LOW"

    def __init__(self, interval: int = 10):
        self.interval = interval

    def after_train_iter(self, runner) -> None:
        if runner.rank:
            return
        lr = runner.optimizer.param_groups[0]["lr"]
        if runner.kind == "iter" and self.every_n_iters(runner, self.interval):
            runner.log.info("iter [%d/%d] lr: %.5g loss: %.4f", runner.global_iter + 1, runner.max_iters, lr,
                            runner.last_loss)
        elif runner.kind == "epoch" and (runner.inner_iter + 1) % self.interval == 0:
            runner.log.info("epoch [%d][%d/%d] lr: %.5g loss: %.4f", runner.epoch + 1, runner.inner_iter + 1,
                            runner.iters_per_epoch, lr, runner.last_loss)

    def after_val_epoch(self, runner) -> None:
        if runner.rank == 0:
            r = runner.eval_results
            runner.log.info("%s [%d] val: knn_top1 %.2f (k=%d)", runner.kind, r[runner.kind], r["knn_top1"], r["k"])


@HOOKS.register_module()
class TensorboardLoggerHook(Hook):
    """Scalars with mmcv's tags: `train/loss`, `learning_rate`, `momentum` at each logged iteration
    (1-based), `val/knn_top1` at the number of iterations trained when it was evaluated. A resumed
    run's writer purges what the interrupted one logged after its checkpoint (TensorBoard's
    `purge_step`), so the curves have no doubled stretch."""

    priority = "VERY_LOW"

    def __init__(self, interval: int = 10):
        self.interval = interval
        self.writer = None

    def before_run(self, runner) -> None:
        if runner.rank:
            return
        from torch.utils.tensorboard import SummaryWriter

        resumed_at = runner.global_iter  # iterations trained before this run
        self.writer = SummaryWriter(str(runner.log_dir), purge_step=resumed_at + 1 if resumed_at else None)
        runner.log_writers.append(self.writer)

    def after_train_iter(self, runner) -> None:
        if self.writer is None or not self.every_n_iters(runner, self.interval):
            return
        step, group = runner.global_iter + 1, runner.optimizer.param_groups[0]
        self.writer.add_scalar("train/loss", runner.last_loss, step)
        self.writer.add_scalar("learning_rate", group["lr"], step)
        momentum = momentum_of(group)
        if momentum is not None:
            self.writer.add_scalar("momentum", momentum, step)

    def after_val_epoch(self, runner) -> None:
        if self.writer is not None:
            self.writer.add_scalar("val/knn_top1", runner.eval_results["knn_top1"], runner.eval_results["iter"])

    def after_run(self, runner) -> None:
        if self.writer is not None:
            self.writer.close()
            runner.log_writers.remove(self.writer)
            self.writer = None
