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
        self.hooks = [build(h, HOOKS) for h in cfg.get("custom_hooks", [])]
        self.epoch = 0
        self.global_iter = 0

        self.log_dir = Path(work_dir) if not storage.is_s3(work_dir) else Path(tempfile.mkdtemp(prefix="ssl-log-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.rank == 0:
            _setup_logging(self.log_dir / "train.log")

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self, rng: list[dict]) -> dict:
        """The whole training state; `rng` holds every rank's generators, in rank order."""
        return {
            "meta": {"epoch": self.epoch, "iter": self.global_iter, "algorithm": self.cfg.model.type,
                     "config": self.cfg.pretty_text, "world_size": self.world_size},
            "state_dict": self.algorithm.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.step.state_dict(),
            "rng": rng,
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

    def _set_lr(self, it: int) -> float:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = lr_at(self.cfg.get("lr_config"), base, self.epoch, it, self.iters_per_epoch,
                                self.max_epochs)
        return self.optimizer.param_groups[0]["lr"]

    def run(self) -> dict:
        self.resume()
        for hook in self.hooks:
            hook.before_run(self)
        ckpt_cfg = self.cfg.get("checkpoint_config", {})
        interval, max_keep = ckpt_cfg.get("interval", 1), ckpt_cfg.get("max_keep_ckpts", 0)
        log_interval = self.cfg.get("log_config", {}).get("interval", 50)
        if self.epoch == 0 and self.rank == 0:
            log.info("training %s for %d epochs x %d iterations, %d process(es) x batch %d on %s",
                     self.cfg.model.type, self.max_epochs, self.iters_per_epoch, self.world_size,
                     self.batch_size, self.device)
        start, images, last_loss = time.time(), 0, float("nan")
        while self.epoch < self.max_epochs:
            self.model.train()
            for hook in self.hooks:
                hook.before_train_epoch(self)
            bar = tqdm(total=self.iters_per_epoch, desc=f"epoch {self.epoch + 1}/{self.max_epochs}",
                       disable=self.rank != 0, mininterval=1.0 if sys.stderr.isatty() else 30.0,
                       file=sys.stderr)
            for it, batch in enumerate(self._loader()):
                lr = self._set_lr(it)
                views = [v.to(self.device, non_blocking=True) for v in batch["img"]]
                with self.step.autocast():
                    losses = self.model(views, mode="train")
                self.step(losses["loss"], self.global_iter)
                self.global_iter += 1
                images += views[0].shape[0] * self.world_size
                last_loss = float(losses["loss"].detach())
                for hook in self.hooks:
                    hook.after_train_iter(self)
                bar.update(1)
                bar.set_postfix(loss=f"{last_loss:.4f}", lr=f"{lr:.4g}", refresh=False)
                if self.rank == 0 and (it + 1) % log_interval == 0:
                    log.info("epoch [%d][%d/%d] lr: %.5g loss: %.4f", self.epoch + 1, it + 1,
                             self.iters_per_epoch, lr, last_loss)
            bar.close()
            self.epoch += 1
            for hook in self.hooks:
                hook.after_train_epoch(self)
            save_now = self.epoch % interval == 0 or self.epoch == self.max_epochs
            rngs = dist.all_gather_object(checkpoint.rng_state()) if save_now else None
            if self.rank == 0:
                log.info("epoch [%d] done, loss %.4f, %.1f images/s", self.epoch, last_loss,
                         images / max(1e-9, time.time() - start))
                if save_now:
                    uri = checkpoint.save(self.state_dict(rngs), self.work_dir, self.epoch, max_keep)
                    log.info("saved checkpoint %s", uri)
                    if storage.is_s3(self.work_dir):
                        storage.upload(self.log_dir / "train.log", storage.join(self.work_dir, "train.log"))
            dist.barrier()
        metrics = {"final_loss": last_loss, "epochs": self.max_epochs, "iterations": self.global_iter,
                   "world_size": self.world_size, "seconds": round(time.time() - start, 1),
                   "checkpoint": storage.join(self.work_dir, f"epoch_{self.max_epochs}.pth")}
        if self.rank == 0:
            storage.write_text(storage.join(self.work_dir, "train_metrics.json"), json.dumps(metrics, indent=2))
        dist.cleanup()
        return metrics
