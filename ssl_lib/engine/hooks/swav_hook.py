"""The seed's SwAVHook: SwAV's queue of past embeddings, started at `epoch_queue_starts`."""
from __future__ import annotations

import torch

from ...errors import ConfigError
from ...registry import HOOKS
from .hook import Hook


@HOOKS.register_module()
class SwAVHook(Hook):
    """From epoch `epoch_queue_starts` (0-based) on, hands SwAVHead a zero queue of `queue_length`
    embeddings over all processes (`queue_length / world_size` per process) for each crop of
    `crops_for_assign`; the head fills it and uses it for the codes once it is full. The head starts
    each epoch without using it until it is full again, as the seed does.

    `queue_length` is trimmed to a multiple of the global batch, as the seed does. Each process's
    queue is saved with every checkpoint and restored on resume (the seed wrote `queue<rank>.pth`
    every `interval` epochs instead; `interval` is accepted so seed configs load).
    """

    def __init__(self, batch_size: int, epoch_queue_starts: int = 15, crops_for_assign: list[int] = (0, 1),
                 feat_dim: int = 128, queue_length: int = 0, interval: int = 1):
        self.batch_size, self.epoch_queue_starts = batch_size, epoch_queue_starts
        self.crops_for_assign, self.feat_dim = list(crops_for_assign), feat_dim
        self.queue_length, self.interval = queue_length, interval
        self.queue: torch.Tensor | None = None

    def before_run(self, runner) -> None:
        head = runner.algorithm.head
        if self.batch_size != runner.batch_size:
            raise ConfigError(f"SwAVHook.batch_size={self.batch_size} but data.samples_per_gpu="
                              f"{runner.batch_size}; set it from data.samples_per_gpu")
        if self.crops_for_assign != head.crops_for_assign:
            raise ConfigError(f"SwAVHook.crops_for_assign={self.crops_for_assign} differs from "
                              f"model.head.crops_for_assign={head.crops_for_assign}")
        if self.feat_dim != head.prototypes.in_features:
            raise ConfigError(f"SwAVHook.feat_dim={self.feat_dim} but model.head.feat_dim="
                              f"{head.prototypes.in_features}; set it to {head.prototypes.in_features}")
        global_batch = self.batch_size * runner.world_size
        if self.queue_length % global_batch:
            trimmed = self.queue_length - self.queue_length % global_batch
            runner.log.warning("SwAVHook: queue_length %d trimmed to %d, a multiple of the global batch %d",
                               self.queue_length, trimmed, global_batch)
            self.queue_length = trimmed
        shape = (len(self.crops_for_assign), self.queue_length // runner.world_size, self.feat_dim)
        if self.queue is not None and tuple(self.queue.shape) != shape:
            runner.log.warning("SwAVHook: the checkpoint's queue has shape %s, this run needs %s: "
                               "starting a new queue", tuple(self.queue.shape), shape)
            self.queue = None

    def before_train_epoch(self, runner) -> None:
        if self.queue_length > 0 and runner.epoch >= self.epoch_queue_starts and self.queue is None:
            self.queue = torch.zeros(len(self.crops_for_assign), self.queue_length // runner.world_size,
                                     self.feat_dim, device=runner.device)
        if self.queue is not None:
            self.queue = self.queue.to(runner.device)
        runner.algorithm.head.queue = self.queue
        runner.algorithm.head.use_queue = False

    def after_train_epoch(self, runner) -> None:
        self.queue = runner.algorithm.head.queue

    def state_dict(self) -> dict:
        return {"queue": self.queue}

    def load_state_dict(self, state: dict) -> None:
        self.queue = state.get("queue")
