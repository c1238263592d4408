"""The epoch-based training loop: SGD-family optimizers, LR schedule, hooks, checkpoint and resume,
one process or DDP (torchrun / PyTorchJob)."""
from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from .. import storage
from ..data.shards import BlockShuffleSampler
from ..errors import ConfigError
from ..models.utils import revert_sync_batchnorm
from ..registry import ALGORITHMS, DATASETS, HOOKS, build
from . import checkpoint, dist
from .hooks import Hook, get_priority
from .optimizer import OptimizerStep, build_optimizer
from .schedules import lr_at

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
        runner.set_lr(runner.inner_iter)


class OptimizerHook(Hook):
    """Backward and (every `update_interval` iterations) the optimizer step."""

    priority = "ABOVE_NORMAL"

    def after_train_iter(self, runner) -> None:
        runner.step(runner.outputs["loss"], runner.global_iter)


class CheckpointHook(Hook):
    priority = "NORMAL"

    def after_train_epoch(self, runner) -> None:
        runner.save_checkpoint()


class LoggerHook(Hook):
    priority = "VERY_LOW"

    def after_train_iter(self, runner) -> None:
        interval = runner.cfg.get("log_config", {}).get("interval", 50)
        if runner.rank == 0 and (runner.inner_iter + 1) % interval == 0:
            log.info("epoch [%d][%d/%d] lr: %.5g loss: %.4f", runner.epoch + 1, runner.inner_iter + 1,
                     runner.iters_per_epoch, runner.optimizer.param_groups[0]["lr"], runner.last_loss)


def build_hooks(custom_hooks: list[dict]) -> list[Hook]:
    """The built-in hooks, then the config's custom hooks, stably sorted by priority as mmcv does."""
    hooks = [LrUpdaterHook(), OptimizerHook(), CheckpointHook(), LoggerHook()]
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


class EpochRunner:
    def __init__(self, cfg, dataset_uri: str, work_dir: str):
        self.cfg = cfg
        self.work_dir = work_dir
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
        self.max_epochs = int(cfg.runner.max_epochs)
        self.max_iters = self.max_epochs * self.iters_per_epoch

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
        self.hooks = build_hooks(cfg.get("custom_hooks", []))
        self.epoch = 0
        self.global_iter = 0
        self.inner_iter = 0
        self.outputs: dict = {}
        self.last_loss = float("nan")
        self.log = log
        views = getattr(self.dataset, "num_views", None)
        self.algorithm.check_data(num_samples=len(self.dataset), global_batch=self.batch_size * self.world_size,
                                  num_views=sum(views) if isinstance(views, (list, tuple)) else views)

        self.log_dir = Path(work_dir) if not storage.is_s3(work_dir) else Path(tempfile.mkdtemp(prefix="ssl-log-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.rank == 0:
            _setup_logging(self.log_dir / "train.log")

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self, rng: list[dict], hooks: list[dict], epoch: int) -> dict:
        """The whole training state after `epoch` epochs; `rng` and `hooks` hold every rank's
        generators and hook states, in rank order."""
        return {
            "meta": {"epoch": epoch, "iter": self.global_iter, "algorithm": self.cfg.model.type,
                     "config": self.cfg.pretty_text, "world_size": self.world_size},
            "state_dict": self.algorithm.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.step.state_dict(),
            "rng": rng,
            "hooks": hooks,
        }

    def resume(self) -> None:
        uri = self.cfg.get("resume_from") or checkpoint.newest(self.work_dir)
        if not uri:
            return
        state = checkpoint.load(uri, map_location=self.device)
        self.algorithm.load_state_dict(state["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step.load_state_dict(state.get("scaler", {}))
        self.epoch, self.global_iter = state["meta"]["epoch"], state["meta"]["iter"]
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
        else:
            # The job was resized: each rank gets a fresh stream, still distinct and reproducible.
            torch.manual_seed(self.seed + self.rank + 7919 * self.epoch)
            if self.rank == 0:
                log.warning("checkpoint %s was written by %d process(es), this run has %d: random generators "
                            "reseeded instead of restored", uri, len(rngs), self.world_size)
        log.info("resumed from %s (epoch %d, iteration %d)", uri, self.epoch, self.global_iter)

    # -- loop ----------------------------------------------------------------------------------
    def _loader(self) -> DataLoader:
        self.sampler.set_epoch(self.epoch)
        # Per rank: the loader workers' augmentation seeds come from this generator.
        gen = torch.Generator().manual_seed(self.seed * 1000 + self.epoch + 1_000_003 * self.rank)
        return DataLoader(self.dataset, batch_size=self.batch_size, sampler=self.sampler,
                          num_workers=self.num_workers, drop_last=True, generator=gen,
                          pin_memory=self.device.type == "cuda")

    def set_lr(self, it: int) -> float:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = lr_at(self.cfg.get("lr_config"), base, self.epoch, it, self.iters_per_epoch,
                                self.max_epochs)
        return self.optimizer.param_groups[0]["lr"]

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

    def save_checkpoint(self) -> None:
        """After epoch `self.epoch` (0-based): every `interval` epochs and after the last one."""
        ckpt_cfg = self.cfg.get("checkpoint_config", {})
        done = self.epoch + 1
        if done % ckpt_cfg.get("interval", 1) and done != self.max_epochs:
            return
        rngs = dist.all_gather_object(checkpoint.rng_state())
        hook_states = dist.all_gather_object([hook.state_dict() for hook in self.hooks])
        if self.rank == 0:
            uri = checkpoint.save(self.state_dict(rngs, hook_states, done), self.work_dir, done,
                                  ckpt_cfg.get("max_keep_ckpts", 0))
            log.info("saved checkpoint %s", uri)
            if storage.is_s3(self.work_dir):
                storage.upload(self.log_dir / "train.log", storage.join(self.work_dir, "train.log"))

    def run(self) -> dict:
        self.resume()
        self.call_hook("before_run")
        if self.epoch == 0 and self.rank == 0:
            log.info("training %s for %d epochs x %d iterations, %d process(es) x batch %d on %s",
                     self.cfg.model.type, self.max_epochs, self.iters_per_epoch, self.world_size,
                     self.batch_size, self.device)
        start, images = time.time(), 0
        while self.epoch < self.max_epochs:
            self.model.train()
            self.call_hook("before_train_epoch")
            bar = tqdm(total=self.iters_per_epoch, desc=f"epoch {self.epoch + 1}/{self.max_epochs}",
                       disable=self.rank != 0, mininterval=1.0 if sys.stderr.isatty() else 30.0,
                       file=sys.stderr)
            for it, batch in enumerate(self._loader()):
                self.inner_iter = it
                views, extra = self._batch(batch)
                self.call_hook("before_train_iter")
                with self.step.autocast():
                    self.outputs = self.model(views, mode="train", **extra)
                self.last_loss = float(self.outputs["loss"].detach())
                self.call_hook("after_train_iter")
                self.global_iter += 1
                images += views[0].shape[0] * self.world_size
                bar.update(1)
                bar.set_postfix(loss=f"{self.last_loss:.4f}", lr=f"{self.optimizer.param_groups[0]['lr']:.4g}",
                                refresh=False)
            bar.close()
            if self.rank == 0:
                log.info("epoch [%d] done, loss %.4f, %.1f images/s", self.epoch + 1, self.last_loss,
                         images / max(1e-9, time.time() - start))
            self.call_hook("after_train_epoch")
            self.epoch += 1
            dist.barrier()
        self.call_hook("after_run")
        metrics = {"final_loss": self.last_loss, "epochs": self.max_epochs, "iterations": self.global_iter,
                   "world_size": self.world_size, "seconds": round(time.time() - start, 1),
                   "checkpoint": storage.join(self.work_dir, f"epoch_{self.max_epochs}.pth")}
        if self.rank == 0:
            storage.write_text(storage.join(self.work_dir, "train_metrics.json"), json.dumps(metrics, indent=2))
        dist.cleanup()
        return metrics
