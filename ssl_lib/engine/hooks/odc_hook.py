"""The seed's ODCHook: the upkeep of ODC's memory between steps."""
from __future__ import annotations

import numpy as np

from ...errors import ConfigError
from ...registry import HOOKS
from .deepcluster_hook import hook_field
from .hook import Hook


@HOOKS.register_module()
class ODCHook(Hook):
    """After every step: the centroids recomputed from the memory every `centroids_update_interval`
    steps, small clusters dissolved and refilled every `deal_with_small_clusters_interval`, the loss
    re-weighted by cluster size (`reweight`, power `reweight_pow`), the cluster sizes logged every
    `evaluate_interval`."""

    def __init__(self, centroids_update_interval: int, deal_with_small_clusters_interval: int, evaluate_interval: int,
                 reweight: bool, reweight_pow: float, dist_mode: bool = True):
        self.centroids_update_interval = centroids_update_interval
        self.deal_with_small_clusters_interval = deal_with_small_clusters_interval
        self.evaluate_interval, self.reweight, self.reweight_pow = evaluate_interval, reweight, reweight_pow
        self.dist_mode = dist_mode

    def before_run(self, runner) -> None:
        field = hook_field(runner, "ODCHook")
        if not hasattr(runner.algorithm, "memory_bank"):
            raise ConfigError(f"{field} (ODCHook) needs an algorithm with a memory_bank (ODC), not "
                              f"{type(runner.algorithm).__name__}")
        if not self.dist_mode and runner.world_size > 1:
            raise ConfigError(f"{field}.dist_mode=False with {runner.world_size} processes; set dist_mode=True")

    def after_train_iter(self, runner) -> None:
        memory = runner.algorithm.memory_bank
        if self.every_n_iters(runner, self.centroids_update_interval):
            memory.update_centroids_memory()
        if self.every_n_iters(runner, self.deal_with_small_clusters_interval):
            memory.deal_with_small_clusters()
        if self.reweight:
            runner.algorithm.set_reweight(reweight_pow=self.reweight_pow)
        if self.every_n_iters(runner, self.evaluate_interval) and runner.rank == 0:
            sizes = np.bincount(memory.label_bank.numpy(), minlength=memory.num_classes)
            runner.log.info("ODC clusters: empty %d, smallest %d, largest %d, labels changed %.4f",
                            (sizes == 0).sum(), sizes.min(), sizes.max(),
                            float(runner.outputs.get("change_ratio", float("nan"))))
