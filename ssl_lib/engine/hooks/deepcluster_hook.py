"""The seed's DeepClusterHook: the global clustering of DeepCluster, and ODC's initial one."""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Subset

from ...data.datasets import SingleViewDataset
from ...errors import ConfigError
from ...models.clustering import build_clustering
from ...registry import HOOKS
from .hook import Hook

EXTRACTOR_KEYS = ("samples_per_gpu", "workers_per_gpu", "pipeline")


def hook_field(runner, hook_type: str) -> str:
    """`custom_hooks[i]` of the first hook of `hook_type` in the config, for error messages."""
    for i, cfg in enumerate(runner.cfg.get("custom_hooks") or []):
        if cfg.get("type") == hook_type:
            return f"custom_hooks[{i}]"
    return hook_type


@HOOKS.register_module()
class DeepClusterHook(Hook):
    """Before training (`initial`) and after every `interval` epochs: the features of the whole
    training split (neck output of `extractor.pipeline` views, model in eval mode, split over the
    ranks), k-means on rank 0 (`clustering`, seeded by the config's seed and the round), then on
    every rank: the labels into the dataset, uniform sampling over clusters (`unif_sampling`), loss
    weights (`reweight`), the classifier head re-drawn, and ODC's memory (`init_memory`).

    `extractor = dict(samples_per_gpu, workers_per_gpu, pipeline)`: the split read is always the
    training dataset's own data source. A resumed run redoes the clustering that the interrupted
    run did after its last checkpoint, with the same seed, so it continues as if never stopped;
    otherwise the labels come back from the checkpoint (and ODC's memory with the model).
    """

    def __init__(self, extractor: dict, clustering: dict, unif_sampling: bool, reweight: bool, reweight_pow: float,
                 init_memory: bool = False, initial: bool = True, interval: int = 1, dist_mode: bool = True):
        unknown = sorted(set(extractor) - set(EXTRACTOR_KEYS))
        if unknown or "pipeline" not in extractor:
            raise ConfigError(f"DeepClusterHook: extractor takes {', '.join(EXTRACTOR_KEYS)} (pipeline required); "
                              f"got {sorted(extractor)}")
        self.extractor = {"samples_per_gpu": 128, "workers_per_gpu": 0, **extractor}
        self.clustering_cfg = dict(clustering)
        self.clustering = build_clustering(clustering)
        self.unif_sampling, self.reweight, self.reweight_pow = unif_sampling, reweight, reweight_pow
        self.init_memory, self.initial, self.interval, self.dist_mode = init_memory, initial, interval, dist_mode
        self.labels: np.ndarray | None = None
        self.round = 0

    def state_dict(self) -> dict:
        return {} if self.labels is None else {"labels": torch.from_numpy(self.labels), "round": self.round}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.labels, self.round = state["labels"].numpy(), int(state["round"])

    def before_run(self, runner) -> None:
        self._check(runner)
        epoch = runner.epoch
        if epoch >= runner.max_epochs:  # nothing left to train
            return
        if epoch == 0:
            if self.initial:
                self.deepcluster(runner, 0)
        elif epoch % self.interval == 0:  # the interrupted run clustered right after its checkpoint
            self.deepcluster(runner, epoch)
        elif self.labels is not None:  # its last clustering, from the checkpoint
            self._assign(runner, self.labels, self.round)
        elif not (self.init_memory and runner.algorithm.memory_bank.initialized):
            self.deepcluster(runner, epoch)  # a checkpoint without this hook's state

    def after_train_epoch(self, runner) -> None:
        if self.every_n_epochs(runner, self.interval) and runner.epoch + 1 < runner.max_epochs:
            self.deepcluster(runner, runner.epoch + 1)

    def _check(self, runner) -> None:
        field = hook_field(runner, "DeepClusterHook")
        k, n = self.clustering.k, len(runner.dataset)
        if k > n:
            raise ConfigError(f"{field}.clustering.k={k} is more clusters than the {n} training images; "
                              f"use at most {n}")
        head = getattr(runner.algorithm, "head", None)
        if getattr(head, "num_classes", k) != k:
            raise ConfigError(f"{field}.clustering.k={k} but model.head.num_classes={head.num_classes}; "
                              f"they must be equal")
        if not hasattr(runner.dataset, "assign_labels"):
            raise ConfigError(f"{field} (DeepClusterHook) gives the training samples cluster labels: set "
                              f"data.train.type='DeepClusterDataset'")
        if self.init_memory and not hasattr(runner.algorithm, "memory_bank"):
            raise ConfigError(f"{field}.init_memory=True but {type(runner.algorithm).__name__} has no memory_bank")
        if not self.dist_mode and runner.world_size > 1:
            raise ConfigError(f"{field}.dist_mode=False with {runner.world_size} processes: the clustering must "
                              f"be shared; set dist_mode=True")

    def deepcluster(self, runner, round_: int) -> None:
        start = time.time()
        features = extract_features(runner, self.extractor)
        if runner.rank == 0:
            try:
                labels = self.clustering.cluster(features, seed=runner.seed + round_)
            except ConfigError as err:
                raise ConfigError(f"{hook_field(runner, 'DeepClusterHook')}.{err}") from None
            sizes = np.bincount(labels, minlength=self.clustering.k)
            runner.log.info("clustering %d: %d features in %.1fs, empty clusters %d, smallest %d, largest %d",
                            round_, len(labels), time.time() - start, (sizes == 0).sum(), sizes.min(), sizes.max())
        else:
            labels = np.zeros(len(runner.dataset), dtype=np.int64)
        if runner.world_size > 1:
            shared = torch.from_numpy(labels).to(runner.device)
            dist.broadcast(shared, 0)
            labels = shared.cpu().numpy()
        self._assign(runner, labels, round_)
        if self.reweight:
            runner.algorithm.set_reweight(labels, self.reweight_pow)
        head = runner.algorithm.head
        head.init_weights(generator=torch.Generator(head.fc_cls.weight.device).manual_seed(runner.seed + round_))
        if runner.world_size > 1:
            for p in head.parameters():
                dist.broadcast(p.data, 0)
        if self.init_memory:
            runner.algorithm.memory_bank.init_memory(features, labels)

    def _assign(self, runner, labels: np.ndarray, round_: int) -> None:
        self.labels, self.round = labels, round_
        runner.dataset.assign_labels(labels)
        if self.unif_sampling:
            runner.dataset.set_uniform_indices(labels, self.clustering.k, np.random.default_rng([runner.seed, round_]))


@torch.no_grad()
def extract_features(runner, extractor: dict) -> np.ndarray | None:
    """Neck features of every training image (eval mode), each rank reading an equal contiguous slice;
    the whole [N, D] array on rank 0, None on the others."""
    source = runner.dataset.data_source
    n, world, rank = len(source), runner.world_size, runner.rank
    per = math.ceil(n / world)
    rows = [min(i, n - 1) for i in range(rank * per, (rank + 1) * per)]  # the last slice padded
    loader = DataLoader(Subset(SingleViewDataset(source, extractor["pipeline"]), rows),
                        batch_size=extractor["samples_per_gpu"], num_workers=extractor["workers_per_gpu"],
                        shuffle=False, generator=torch.Generator().manual_seed(0),
                        pin_memory=runner.device.type == "cuda")
    model = runner.algorithm
    training = model.training
    model.eval()
    chunks = []
    for batch in loader:
        x = model.extract_feat(batch["img"].to(runner.device, non_blocking=True))
        chunks.append(model.neck(x)[0].flatten(1).float().cpu())
    model.train(training)
    local = torch.cat(chunks)
    if world == 1:
        return local[:n].numpy()
    out = np.empty((per * world, local.shape[1]), dtype=np.float32) if rank == 0 else None
    step = 4096  # rows per all_gather, to bound the device memory it takes
    for s in range(0, per, step):
        part = local[s:s + step].to(runner.device)
        parts = [torch.empty_like(part) for _ in range(world)]
        dist.all_gather(parts, part)
        if rank == 0:
            for r, p in enumerate(parts):
                out[r * per + s:r * per + s + len(p)] = p.cpu().numpy()
    return out[:n] if rank == 0 else None
