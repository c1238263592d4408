"""ODC's memories (Zhan et al. 2020): a feature and a pseudo-label per sample, and a centroid per cluster."""
from __future__ import annotations

import logging

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ...registry import MEMORIES
from ..clustering import kmeans
from ..utils import concat_all_gather, get_dist_info

log = logging.getLogger("ssl_lib.train")


@MEMORIES.register_module()
class ODCMemory(nn.Module):
    """`feature_bank` [length, feat_dim] (L2-normalised rows, on rank 0's CPU only, as in the seed),
    `label_bank` [length] (CPU, every rank) and `centroids` [num_classes, feat_dim] (a buffer, on the
    model's device). Rank 0 makes every change and sends the others the labels and centroids, so all
    ranks hold the same. Both banks are saved in the state dict (the seed's were not), so a resumed run
    goes on with the memory it had.
    """

    def __init__(self, length: int, feat_dim: int, momentum: float, num_classes: int, min_cluster: int,
                 debug: bool = False):
        super().__init__()
        if num_classes * min_cluster > length:
            raise ConfigError(f"model.memory_bank.min_cluster={min_cluster} x num_classes={num_classes} is more than "
                              f"the {length} samples: every cluster would be too small; use min_cluster <= "
                              f"{length // num_classes}")
        self.rank, self.world_size = get_dist_info()
        self.length, self.feat_dim, self.momentum = length, feat_dim, momentum
        self.num_classes, self.min_cluster, self.debug = num_classes, min_cluster, debug
        self.feature_bank = torch.zeros(length, feat_dim) if self.rank == 0 else None
        self.label_bank = torch.zeros(length, dtype=torch.long)
        self.register_buffer("centroids", torch.zeros(num_classes, feat_dim))
        self.initialized = False

    # -- state: the banks are not buffers (DDP would broadcast them every step) but are checkpointed
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.initialized:
            destination[prefix + "label_bank"] = self.label_bank
            if self.feature_bank is not None:
                destination[prefix + "feature_bank"] = self.feature_bank

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        banks = {prefix + "label_bank", prefix + "feature_bank"}
        if prefix + "label_bank" in state_dict:
            self.label_bank = state_dict[prefix + "label_bank"].detach().cpu().clone()
            if self.rank == 0:
                if prefix + "feature_bank" not in state_dict:
                    missing_keys.append(prefix + "feature_bank")
                else:
                    self.feature_bank = state_dict[prefix + "feature_bank"].detach().cpu().clone()
            self.initialized = True
        super()._load_from_state_dict({k: v for k, v in state_dict.items() if k not in banks}, prefix,
                                      local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    # -- communication: rank 0 decides, every rank receives --------------------------------------
    def _broadcast(self, t: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            t = t.to(self.centroids.device)
            dist.broadcast(t, 0)
        return t

    def _sync_labels(self) -> None:
        """Rank 0's label bank to every rank."""
        if self.world_size > 1:
            self.label_bank = self._broadcast(self.label_bank.clone()).cpu()

    # -- the ODC steps ---------------------------------------------------------------------------
    @torch.no_grad()
    def init_memory(self, feature: np.ndarray | None, label: np.ndarray) -> None:
        """From the initial clustering: `label` on every rank, `feature` [length, feat_dim] on rank 0."""
        self.label_bank = torch.as_tensor(np.asarray(label), dtype=torch.long).clone()
        if self.rank == 0:
            self.feature_bank = F.normalize(torch.as_tensor(feature, dtype=torch.float32), dim=1, eps=1e-10)
        self.update_centroids_memory()
        self.initialized = True

    @torch.no_grad()
    def update_samples_memory(self, idx: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        """Every rank's batch: feature <- normalize((1 - m) * old + m * normalize(new)), then each sample
        takes the label of its nearest centroid. Returns the fraction of labels that changed."""
        with torch.autocast(feature.device.type, enabled=False):
            idx = concat_all_gather(idx).cpu()
            feature = concat_all_gather(F.normalize(feature.float(), dim=1, eps=1e-10))
            if self.rank == 0:
                new = (1 - self.momentum) * self.feature_bank[idx].to(feature.device) + self.momentum * feature
                new = F.normalize(new, dim=1, eps=1e-10)
                self.feature_bank[idx] = new.cpu()
                label = (new @ self.centroids.to(new.device).T).argmax(dim=1)
            else:
                label = torch.empty(len(idx), dtype=torch.long)
            label = self._broadcast(label).cpu()
        change_ratio = (label != self.label_bank[idx]).float().mean()
        self.label_bank[idx] = label
        return change_ratio

    def _centroids_of(self, clusters: torch.Tensor) -> torch.Tensor:
        """Mean feature of each listed (non-empty) cluster, from rank 0's banks."""
        rows = torch.isin(self.label_bank, clusters)
        labels, feats = self.label_bank[rows], self.feature_bank[rows]
        sums = torch.zeros(self.num_classes, self.feat_dim).index_add_(0, labels, feats)
        counts = torch.bincount(labels, minlength=self.num_classes).clamp(min=1).unsqueeze(1)
        return (sums / counts)[clusters]

    @torch.no_grad()
    def update_centroids_memory(self, cinds: list[int] | None = None) -> None:
        """Centroids <- the mean feature of their members (of `cinds`, default all); empty clusters keep theirs."""
        if self.rank == 0:
            sizes = torch.bincount(self.label_bank, minlength=self.num_classes)
            clusters = torch.arange(self.num_classes) if cinds is None else torch.as_tensor(cinds)
            clusters = clusters[sizes[clusters] > 0]
            self.centroids[clusters.to(self.centroids.device)] = self._centroids_of(clusters).to(self.centroids.device)
        self.centroids.copy_(self._broadcast(self.centroids))

    @torch.no_grad()
    def deal_with_small_clusters(self) -> None:
        """Clusters under `min_cluster` samples: their samples go to the nearest other centroid, then each
        emptied cluster takes half of the largest one (split by 2-means)."""
        sizes = torch.bincount(self.label_bank, minlength=self.num_classes)
        small = torch.nonzero(sizes < self.min_cluster)[:, 0]
        if self.debug and self.rank == 0:
            log.info("ODC memory: smallest cluster %d, %d clusters under %d", int(sizes.min()), len(small),
                     self.min_cluster)
        if len(small) == 0:
            return
        if self.rank == 0:
            keep = torch.ones(self.num_classes, dtype=torch.bool)
            keep[small] = False
            inclusion = torch.nonzero(keep)[:, 0]
            rows = torch.nonzero(torch.isin(self.label_bank, small))[:, 0]
            if len(rows):
                sim = self.feature_bank[rows] @ self.centroids[inclusion].cpu().T
                self.label_bank[rows] = inclusion[sim.argmax(dim=1)]
            for e in small.tolist():
                largest = int(torch.bincount(self.label_bank, minlength=self.num_classes).argmax())
                self.label_bank[self._partition(largest)] = e
                self.update_centroids_memory([largest, e])
        else:
            for _ in range(len(small)):  # the broadcasts of rank 0's update_centroids_memory calls
                self.update_centroids_memory()
        self._sync_labels()

    def _partition(self, cluster: int) -> torch.Tensor:
        """The rows of the second half of `cluster` split in two by 2-means (seeded; random halves if
        2-means leaves one side empty)."""
        rows = torch.nonzero(self.label_bank == cluster)[:, 0]
        feats = self.feature_bank[rows].numpy()
        if np.isnan(feats).any():
            raise FloatingPointError("ODC memory: NaN in the feature bank")
        side, _ = kmeans(feats, 2, seed=0)
        if side.min() == side.max():
            side = np.zeros(len(rows), dtype=np.int64)
            side[np.random.default_rng(0).permutation(len(rows))[len(rows) // 2:]] = 1
        return rows[torch.from_numpy(side == 1)]
