"""The training loops: EpochBasedRunner (`max_epochs`) and IterBasedRunner (`max_iters`), one base
class for both: SGD-family optimizers, LR and momentum schedules, hooks, checkpoint and resume, one
process or DDP (torchrun / PyTorchJob)."""
from __future__ import annotations

import itertools
import json
import logging
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Sampler
from tqdm import tqdm

from .. import storage
from ..data.shards import BlockShuffleSampler
from ..errors import ConfigError
from ..models.utils import revert_sync_batchnorm
from ..registry import ALGORITHMS, DATASETS, HOOKS, build
from . import checkpoint, dist
from .hooks import Hook, get_priority
from .hooks.eval_hook import EVALUATION_KEYS, EvalHook, check_workflow, has_val_phase
from .hooks.logger_hooks import LoggerHook, momentum_of
from .optimizer import OptimizerStep, build_optimizer
from .schedules import lr_at, momentum_at

log = logging.getLogger("ssl_lib.train")


def _setup_logging(log_file: Path) -> None:
    log.setLevel(logging.INFO)
    log.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    for handler in (logging.StreamHandler(sys.stdout), logging.FileHandler(log_file)):
        handler.setFormatter(fmt)
        log.addHandler(handler)
    log.propagate = False


class LrUpdaterHook(Hook):
    """The LR of every parameter group from `lr_config`, before each iteration."""

    priority = "VERY_HIGH"

    def before_train_iter(self, runner) -> None:
        runner.set_lr()


class MomentumUpdaterHook(Hook):
    """The momentum of every parameter group from `momentum_config`, before each iteration."""

    priority = "HIGH"

    def before_train_iter(self, runner) -> None:
        runner.set_momentum()


class OptimizerHook(Hook):
    """Backward and (every `update_interval` iterations) the optimizer step."""

    priority = "ABOVE_NORMAL"

    def after_train_iter(self, runner) -> None:
        runner.step(runner.outputs["loss"], runner.global_iter)


class CheckpointHook(Hook):
    """Every `checkpoint_config.interval` epochs (iterations) and at the end of training."""

    priority = "NORMAL"

    def after_train_iter(self, runner) -> None:
        runner.save_checkpoint(epoch_end=False)

    def after_train_epoch(self, runner) -> None:
        runner.save_checkpoint(epoch_end=True)


def default_hooks(cfg) -> list[Hook]:
    """The runner's own hooks in mmcv's order: LR, momentum (with `momentum_config`), optimizer,
    evaluation (with a 'val' phase in `workflow`), checkpoint, the loggers of `log_config.hooks`."""
    workflow = cfg.get("workflow", [("train", 1)])
    problem = check_workflow(workflow)
    if problem:
        raise ConfigError(f"workflow = {workflow!r}: {problem}")
    hooks = [LrUpdaterHook()]
    if cfg.get("momentum_config"):
        hooks.append(MomentumUpdaterHook())
    hooks.append(OptimizerHook())
    if has_val_phase(cfg):
        evaluation = dict(cfg.get("evaluation") or {})
        unknown = sorted(set(evaluation) - set(EVALUATION_KEYS))
        if unknown:
            raise ConfigError(f"evaluation: unknown key(s) {', '.join(unknown)}; known: {', '.join(EVALUATION_KEYS)}")
        hooks.append(EvalHook(**evaluation))
    hooks.append(CheckpointHook())
    log_cfg = cfg.get("log_config") or {}
    for i, logger in enumerate(log_cfg.get("hooks") or [dict(type="TextLoggerHook")]):
        hook = build(logger, HOOKS, interval=log_cfg.get("interval", 50))
        if not isinstance(hook, Hook):
            raise ConfigError(f"log_config.hooks[{i}] {logger.get('type')!r} is not a Hook")
        hooks.append(hook)
    return hooks


def build_hooks(custom_hooks: list[dict], builtins: list[Hook] | None = None) -> list[Hook]:
    """The built-in hooks (default: LR, optimizer, checkpoint, text log), then the config's custom
    hooks, stably sorted by priority as mmcv does."""
    hooks = list(builtins) if builtins is not None else [LrUpdaterHook(), OptimizerHook(), CheckpointHook(),
                                                          LoggerHook(interval=50)]
    for i, cfg in enumerate(custom_hooks or []):
        cfg = dict(cfg)
        priority = cfg.pop("priority", None)
        hook = build(cfg, HOOKS)
        if not isinstance(hook, Hook):
            raise ConfigError(f"custom_hooks[{i}] {cfg.get('type')!r} is not a Hook")
        if priority is not None:
            hook.priority = priority
        try:
            get_priority(hook.priority)
        except ConfigError as err:
            raise ConfigError(f"custom_hooks[{i}] ({cfg.get('type')}): {err}") from None
        hooks.append(hook)
    return sorted(hooks, key=lambda h: get_priority(h.priority))


class _SkipSampler(Sampler[int]):
    """`sampler`'s order without its first `n` indices."""

    def __init__(self, sampler: Sampler, n: int):
        self.sampler, self.n = sampler, n

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.n, None)

    def __len__(self) -> int:
        return len(self.sampler) - self.n


class BaseRunner:
    """What both runners share. A subclass says how long training lasts (`_length`), where the
    schedules stand (`_progress`) and when a checkpoint is due (`_checkpoint_due`); `kind` names its
    checkpoints, `{kind}_{N}.pth`.

    Training walks the sampler's epochs (each a new order, seeded by the epoch); a checkpoint records
    the position within the epoch too, and a resumed run starts its epoch past the batches already
    trained on, so a resume at any checkpoint continues bit-identically.
    """

    kind = ""

    def __init__(self, cfg, dataset_uri: str, work_dir: str):
        self.cfg = cfg
        self.dataset_uri, self.work_dir = dataset_uri, work_dir
        self.device = dist.init_dist()
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.seed = int(cfg.get("seed", 0))
        torch.manual_seed(self.seed + self.rank)
        # The seed's `--deterministic`: reproducible cuDNN kernels, at some cost in speed.
        torch.backends.cudnn.deterministic = bool(cfg.get("deterministic", False))
        torch.backends.cudnn.benchmark = bool(cfg.get("cudnn_benchmark", False)) and not cfg.get("deterministic")

        train_cfg = dict(cfg.data.train)
        train_cfg["data_source"] = dict(train_cfg["data_source"], root=dataset_uri)
        self.dataset = build(train_cfg, DATASETS)
        self.batch_size = int(cfg.data.samples_per_gpu)
        self.num_workers = int(cfg.data.get("workers_per_gpu", 0))
        blocks = getattr(getattr(self.dataset, "data_source", None), "blocks", None)
        if blocks:  # a split read from disk a row group at a time
            self.sampler = BlockShuffleSampler(blocks, num_replicas=self.world_size, rank=self.rank, seed=self.seed)
        else:
            self.sampler = DistributedSampler(self.dataset, num_replicas=self.world_size, rank=self.rank,
                                              shuffle=True, seed=self.seed, drop_last=True)
        self.iters_per_epoch = len(self.sampler) // self.batch_size
        if self.iters_per_epoch == 0:
            raise ConfigError(f"data.samples_per_gpu={self.batch_size} x {self.world_size} process(es) is larger "
                              f"than the training split ({len(self.dataset)} images)")
        self.max_epochs, self.max_iters = self._length(cfg.runner)

        self.algorithm = build(cfg.model, ALGORITHMS).to(self.device)
        if self.world_size > 1:
            if self.device.type == "cpu":
                # SyncBatchNorm has no CPU kernel under gloo: each process normalizes its own batch.
                self.algorithm = revert_sync_batchnorm(self.algorithm)
            self.model = DistributedDataParallel(
                self.algorithm, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        else:
            self.model = self.algorithm
        self.optimizer = build_optimizer(cfg.optimizer, self.algorithm)
        self.step = OptimizerStep(self.optimizer, self.algorithm, self.device, cfg.get("optimizer_config"),
                                  cfg.get("fp16"))
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.base_momentums = [momentum_of(g) for g in self.optimizer.param_groups]
        if cfg.get("momentum_config") and None in self.base_momentums:
            raise ConfigError(f"momentum_config is set but optimizer {cfg.optimizer.get('type')} has no momentum "
                              f"or betas to schedule")
        self.epoch = 0
        self.global_iter = 0
        self.inner_iter = 0  # the iteration within the epoch: 0-based index of the current one, as mmcv's
        self._inner_done = 0  # iterations of this epoch trained so far
        self._in_iter = False  # between an iteration's first hook and the count that says it is done
        self._resume_inner = 0  # iterations of the resumed checkpoint's epoch that it had trained
        self.set_lr()  # a bad lr_config / momentum_config fails here, not after the first epoch
        self.set_momentum()
        self.hooks = build_hooks(cfg.get("custom_hooks", []), default_hooks(cfg))
        self.outputs: dict = {}
        self.eval_results: dict = {}
        self.last_loss = float("nan")
        self.log = log
        self.log_writers: list = []  # flushed before the logs are uploaded (TensorBoard)
        self.resume_from = cfg.get("resume_from")
        views = getattr(self.dataset, "num_views", None)
        self.algorithm.check_data(num_samples=len(self.dataset), global_batch=self.batch_size * self.world_size,
                                  num_views=sum(views) if isinstance(views, (list, tuple)) else views)

        self.log_dir = Path(work_dir) if not storage.is_s3(work_dir) else Path(tempfile.mkdtemp(prefix="ssl-log-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.rank == 0:
            _setup_logging(self.log_dir / "train.log")
        for hook in self.hooks:
            hook.setup(self)

    # -- what a subclass says ------------------------------------------------------------------
    def _length(self, runner_cfg) -> tuple[int, int]:
        """(max_epochs, max_iters)."""
        raise NotImplementedError

    def _progress(self) -> tuple[int, int, int | None]:
        """(epoch, iteration, max_iters) for the schedules: see schedules.lr_at."""
        raise NotImplementedError

    def _epoch_stop(self, first: int) -> int:
        """Where the current epoch, starting at iteration `first`, stops."""
        raise NotImplementedError

    def _checkpoint_due(self, done: int, epoch_end: bool) -> int | None:
        """The N of the `{kind}_{N}.pth` due now (`done` iterations trained), or None."""
        raise NotImplementedError

    def _describe(self) -> str:
        raise NotImplementedError

    @classmethod
    def final_checkpoint(cls, runner_cfg) -> str:
        raise NotImplementedError

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self, rng: list[dict], hooks: list[dict], epoch: int, inner: int, done: int) -> dict:
        """The whole training state after `done` iterations, `inner` of them in `epoch` (epochs
        before it complete); `rng` and `hooks` hold every rank's generators and hook states, in
        rank order."""
        return {
            "meta": {"epoch": epoch, "iter": done, "inner_iter": inner, "algorithm": self.cfg.model.type,
                     "config": self.cfg.pretty_text, "world_size": self.world_size},
            "state_dict": self.algorithm.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.step.state_dict(),
            "rng": rng,
            "hooks": hooks,
        }

    def resume(self) -> None:
        uri = self.resume_from or checkpoint.newest(self.work_dir, self.kind)
        if not uri:
            return
        state = checkpoint.load(uri, map_location=self.device)
        try:
            self.algorithm.load_state_dict(state["state_dict"])
        except RuntimeError as err:
            lines = str(err).strip().splitlines()  # the 2nd names the keys or the shape that differ
            raise ConfigError(f"checkpoint {uri} does not fit this config's model: "
                              f"{lines[min(1, len(lines) - 1)].strip()}") from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.step.load_state_dict(state.get("scaler", {}))
        meta = state["meta"]
        self.epoch, self.global_iter = meta["epoch"], meta["iter"]
        rngs = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]
        hook_states = state.get("hooks") or []
        if len(hook_states) == self.world_size:
            for hook, hook_state in zip(self.hooks, hook_states[self.rank]):
                hook.load_state_dict(hook_state)
        elif hook_states:
            log.warning("checkpoint %s holds hook states of %d process(es), this run has %d: hooks start afresh",
                        uri, len(hook_states), self.world_size)
        if len(rngs) == self.world_size:
            checkpoint.set_rng_state(rngs[self.rank])
            self._resume_inner = meta.get("inner_iter", 0)
        else:
            # The job was resized: each rank gets a fresh stream, still distinct and reproducible, and
            # the epoch it stopped in starts over in the new world's order.
            torch.manual_seed(self.seed + self.rank + 7919 * self.epoch)
            self._resume_inner = 0
            if self.rank == 0:
                log.warning("checkpoint %s was written by %d process(es), this run has %d: random generators "
                            "reseeded instead of restored", uri, len(rngs), self.world_size)
        log.info("resumed from %s (epoch %d, iteration %d)", uri, self.epoch, self.global_iter)

    def _gather_state(self) -> tuple[list, list]:
        """Every rank's random generators and hook states (a collective: all ranks call it)."""
        return (dist.all_gather_object(checkpoint.rng_state()),
                dist.all_gather_object([hook.state_dict() for hook in self.hooks]))

    def _position(self) -> tuple[int, int, int]:
        """(epoch, iterations trained in it, iterations trained) for a checkpoint written now; in an
        iteration's after_train_iter hooks that iteration counts as trained (its step is taken)."""
        done, inner = self.global_iter + self._in_iter, self._inner_done + self._in_iter
        if inner == self.iters_per_epoch:
            return self.epoch + 1, 0, done
        return self.epoch, inner, done

    def save_checkpoint(self, epoch_end: bool) -> None:
        """`{kind}_{N}.pth` when one is due: after an epoch (epoch_end) or after an iteration."""
        epoch, inner, done = self._position()
        number = self._checkpoint_due(done, epoch_end)
        if number is None:
            return
        rngs, hook_states = self._gather_state()
        if self.rank == 0:
            ckpt_cfg = self.cfg.get("checkpoint_config", {})
            uri = checkpoint.save(self.state_dict(rngs, hook_states, epoch, inner, done), self.work_dir, number,
                                  ckpt_cfg.get("max_keep_ckpts", 0), kind=self.kind)
            log.info("saved checkpoint %s", uri)
            self._upload_logs()

    def write_checkpoint(self, name: str) -> str:
        """The whole state now, as `name` in the work dir (a collective: all ranks call it)."""
        rngs, hook_states = self._gather_state()
        uri = storage.join(self.work_dir, name)
        if self.rank == 0:
            checkpoint.write(self.state_dict(rngs, hook_states, *self._position()), uri)
            log.info("saved checkpoint %s", uri)
        return uri

    def _upload_logs(self) -> None:
        """train.log and the TensorBoard events into an s3:// work dir (a local one holds them already)."""
        for writer in self.log_writers:
            writer.flush()
        if storage.is_s3(self.work_dir):
            for path in sorted(self.log_dir.iterdir()):
                if path.name == "train.log" or path.name.startswith("events.out.tfevents."):
                    storage.upload(path, storage.join(self.work_dir, path.name))

    # -- loop ----------------------------------------------------------------------------------
    def _loader(self, skip: int = 0):
        """This epoch's batches from batch `skip` on. Without loader workers the skipped batches' indices
        are dropped from the sampler's order (nothing decoded; the main process's random state is the
        checkpoint's). A loader worker's augmentations draw on a stream that advances with every batch
        it makes, so with workers the skipped batches are made and dropped instead."""
        self.sampler.set_epoch(self.epoch)
        # Per rank: the loader workers' augmentation seeds come from this generator.
        gen = torch.Generator().manual_seed(self.seed * 1000 + self.epoch + 1_000_003 * self.rank)
        sampler = _SkipSampler(self.sampler, skip * self.batch_size) if skip and not self.num_workers else self.sampler
        batches = iter(DataLoader(self.dataset, batch_size=self.batch_size, sampler=sampler,
                                  num_workers=self.num_workers, drop_last=True, generator=gen,
                                  pin_memory=self.device.type == "cuda"))
        if self.num_workers:
            for _ in range(skip):
                next(batches)
        return batches

    def set_lr(self) -> float:
        epoch, it, max_iters = self._progress()
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = lr_at(self.cfg.get("lr_config"), base, epoch, it, self.iters_per_epoch, self.max_epochs,
                                max_iters)
        return self.optimizer.param_groups[0]["lr"]

    def set_momentum(self) -> None:
        momentum_cfg = self.cfg.get("momentum_config")
        if not momentum_cfg:
            return
        epoch, it, max_iters = self._progress()
        for group, base in zip(self.optimizer.param_groups, self.base_momentums):
            value = momentum_at(momentum_cfg, base, epoch, it, self.iters_per_epoch, self.max_epochs, max_iters)
            if "momentum" in group:
                group["momentum"] = value
            else:
                group["betas"] = (value, *group["betas"][1:])

    def call_hook(self, name: str) -> None:
        for hook in self.hooks:
            getattr(hook, name)(self)

    def _batch(self, batch: dict) -> tuple[list[torch.Tensor], dict]:
        """The views, and every other key but the ground-truth label as keyword arguments."""
        img = batch["img"]
        views = [img] if isinstance(img, torch.Tensor) else list(img)
        views = [v.to(self.device, non_blocking=True) for v in views]
        extra = {k: v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                 for k, v in batch.items() if k not in ("img", "label")}
        return views, extra

    def _train_epoch(self, first: int, last: int) -> int:
        """Iterations `first`..`last - 1` of this epoch; the number of images trained on."""
        self.model.train()
        self.call_hook("before_train_epoch")
        bar = tqdm(total=last - first, desc=f"epoch {self.epoch + 1}/{self.max_epochs}", disable=self.rank != 0,
                   mininterval=1.0 if sys.stderr.isatty() else 30.0, file=sys.stderr)
        images = 0
        for it, batch in zip(range(first, last), self._loader(first)):
            self.inner_iter, self._in_iter = it, True
            views, extra = self._batch(batch)
            self.call_hook("before_train_iter")
            with self.step.autocast():
                self.outputs = self.model(views, mode="train", **extra)
            self.last_loss = float(self.outputs["loss"].detach())
            self.call_hook("after_train_iter")
            self.global_iter, self._inner_done, self._in_iter = self.global_iter + 1, self._inner_done + 1, False
            images += views[0].shape[0] * self.world_size
            bar.update(1)
            bar.set_postfix(loss=f"{self.last_loss:.4f}", lr=f"{self.optimizer.param_groups[0]['lr']:.4g}",
                            refresh=False)
        bar.close()
        return images

    def _finished(self) -> bool:
        return self.global_iter >= self.max_iters

    def run(self) -> dict:
        self.resume()
        self.call_hook("before_run")
        if self.global_iter == 0 and self.rank == 0:
            log.info("training %s for %s (%d iterations per epoch), %d process(es) x batch %d on %s",
                     self.cfg.model.type, self._describe(), self.iters_per_epoch, self.world_size,
                     self.batch_size, self.device)
        start, images = time.time(), 0
        while not self._finished():
            first, self._resume_inner = self._resume_inner, 0
            last, self._inner_done = self._epoch_stop(first), first
            images += self._train_epoch(first, last)
            if self.rank == 0:
                log.info("epoch [%d] done, loss %.4f, %.1f images/s", self.epoch + 1, self.last_loss,
                         images / max(1e-9, time.time() - start))
            self.call_hook("after_train_epoch")
            if last == self.iters_per_epoch:
                self.epoch, self._inner_done = self.epoch + 1, 0
            dist.barrier()
        self.call_hook("after_run")
        metrics = {"final_loss": self.last_loss, "epochs": self.max_epochs, "iterations": self.global_iter,
                   "world_size": self.world_size, "seconds": round(time.time() - start, 1),
                   "checkpoint": storage.join(self.work_dir, self.final_checkpoint(self.cfg.runner))}
        for hook in self.hooks:
            metrics.update(hook.metrics())
        if metrics.get("best_checkpoint"):
            metrics["best_checkpoint"] = storage.join(self.work_dir, metrics["best_checkpoint"])
        if self.rank == 0:
            storage.write_text(storage.join(self.work_dir, "train_metrics.json"), json.dumps(metrics, indent=2))
            self._upload_logs()
        dist.cleanup()
        return metrics


class EpochRunner(BaseRunner):
    """mmcv's EpochBasedRunner: `runner = dict(type='EpochBasedRunner', max_epochs=N)`; checkpoints
    `epoch_{N}.pth` every `checkpoint_config.interval` epochs and after the last one."""

    kind = "epoch"

    def _length(self, runner_cfg) -> tuple[int, int]:
        if runner_cfg.get("max_iters") is not None:
            raise ConfigError("runner: EpochBasedRunner takes max_epochs, not max_iters (for iterations: "
                              "runner = dict(_delete_=True, type='IterBasedRunner', max_iters=N))")
        max_epochs = int(runner_cfg.max_epochs)
        return max_epochs, max_epochs * self.iters_per_epoch

    def _progress(self) -> tuple[int, int, int | None]:
        return self.epoch, self.inner_iter, None

    def _epoch_stop(self, first: int) -> int:
        return self.iters_per_epoch

    def _checkpoint_due(self, done: int, epoch_end: bool) -> int | None:
        finished = self.epoch + 1
        if not epoch_end or (finished % self.cfg.get("checkpoint_config", {}).get("interval", 1)
                             and finished != self.max_epochs):
            return None
        return finished

    def _finished(self) -> bool:
        # by epochs: a job resized on resume has another number of iterations per epoch
        return self.epoch >= self.max_epochs

    def _describe(self) -> str:
        return f"{self.max_epochs} epochs"

    @classmethod
    def final_checkpoint(cls, runner_cfg) -> str:
        return f"epoch_{int(runner_cfg.max_epochs)}.pth"


class IterRunner(BaseRunner):
    """mmcv's IterBasedRunner: `runner = dict(type='IterBasedRunner', max_iters=N)` trains N iterations,
    the data loader starting the sampler's next epoch whenever one is used up; every schedule counts
    iterations up to N; checkpoints `iter_{N}.pth` every `checkpoint_config.interval` iterations and
    at the end. Hooks see an epoch begin and end with each pass over the data (the last one cut short
    at N), so epoch-based hooks (EMA's swap, SwAV's queue) work as under the epoch runner."""

    kind = "iter"

    def _length(self, runner_cfg) -> tuple[int, int]:
        if runner_cfg.get("max_epochs") is not None:
            raise ConfigError("runner: IterBasedRunner takes max_iters, not max_epochs (write runner = "
                              "dict(_delete_=True, type='IterBasedRunner', max_iters=N) to drop a base config's "
                              "max_epochs)")
        max_iters = int(runner_cfg.max_iters)
        return math.ceil(max_iters / self.iters_per_epoch), max_iters

    def _progress(self) -> tuple[int, int, int | None]:
        return 0, self.global_iter, self.max_iters

    def _epoch_stop(self, first: int) -> int:
        return min(self.iters_per_epoch, first + self.max_iters - self.global_iter)

    def _checkpoint_due(self, done: int, epoch_end: bool) -> int | None:
        if epoch_end:  # the final one, after the last (partial) epoch's hooks
            return done if done == self.max_iters else None
        interval = self.cfg.get("checkpoint_config", {}).get("interval", 1)
        return done if done % interval == 0 and done < self.max_iters else None

    def _describe(self) -> str:
        return f"{self.max_iters} iterations"

    @classmethod
    def final_checkpoint(cls, runner_cfg) -> str:
        return f"iter_{int(runner_cfg.max_iters)}.pth"


RUNNERS = {"EpochBasedRunner": EpochRunner, "IterBasedRunner": IterRunner}


def runner_class(cfg) -> type[BaseRunner]:
    name = (cfg.get("runner") or {}).get("type", "EpochBasedRunner")
    if name not in RUNNERS:
        raise ConfigError(f"runner.type = {name!r}: use one of {', '.join(RUNNERS)}")
    return RUNNERS[name]


def build_runner(cfg, dataset_uri: str, work_dir: str) -> BaseRunner:
    return runner_class(cfg)(cfg, dataset_uri, work_dir)


def final_checkpoint_name(cfg) -> str:
    """The file name of the checkpoint a finished training leaves: `epoch_{max_epochs}.pth` or
    `iter_{max_iters}.pth`."""
    return runner_class(cfg).final_checkpoint(cfg.runner)
