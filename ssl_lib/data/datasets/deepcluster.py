"""The seed's DeepClusterDataset (DeepCluster, ODC): one view of each image and its pseudo-label."""
from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from ...registry import DATASETS
from ..transforms import build_pipeline
from .multi_view import build_source


@DATASETS.register_module()
class DeepClusterDataset(Dataset):
    """`dict(img=tensor, pseudo_label, idx, label)`; the pseudo-label is -1 until `assign_labels`.

    Position i of the dataset reads sample `order[i]` (the identity at first). Uniform sampling over
    clusters, done by the seed's sampler, is done here by `set_uniform_indices` rewriting `order`,
    so any sampler that visits every position once per epoch draws every cluster equally often.
    `idx` is always the sample's own index, which ODC's memory is keyed by.
    """

    def __init__(self, data_source: dict, pipeline: list[dict], prefetch: bool = False):
        # `prefetch` is accepted so seed configs load; decoding always happens in the loader workers here.
        self.data_source = build_source(data_source)
        self.pipeline = build_pipeline(pipeline)
        self.clustering_labels = np.full(len(self.data_source), -1, dtype=np.int64)
        self.order = np.arange(len(self.data_source))

    def __len__(self) -> int:
        return len(self.data_source)

    def __getitem__(self, i: int) -> dict:
        idx = int(self.order[i])
        img = self.pipeline(self.data_source.get_image(idx))
        return dict(img=img, pseudo_label=int(self.clustering_labels[idx]), idx=idx,
                    label=self.data_source.get_label(idx))

    def assign_labels(self, labels) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (len(self),):
            raise ValueError(f"DeepClusterDataset: {labels.shape[0]} labels for {len(self)} samples")
        self.clustering_labels = labels

    def set_uniform_indices(self, labels, num_classes: int, rng: np.random.Generator) -> None:
        """The seed's uniform sampling: int(N / num_classes) + 1 draws from every non-empty cluster
        (without replacement when the cluster is larger), shuffled, the first N kept (repeated from
        the start up to N when empty clusters leave fewer)."""
        labels = np.asarray(labels)
        n = len(labels)
        per_cluster = n // num_classes + 1
        sizes = np.bincount(labels, minlength=num_classes)
        members = np.split(np.argsort(labels, kind="stable"), np.cumsum(sizes)[:-1])
        order = np.concatenate([rng.choice(m, per_cluster, replace=len(m) <= per_cluster) for m in members if len(m)])
        rng.shuffle(order)
        self.order = np.resize(order, n)
