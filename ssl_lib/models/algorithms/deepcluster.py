"""DeepCluster (Caron et al. 2018): classify each image into its k-means cluster of the previous
epoch. The clustering, the uniform sampling over clusters and the re-drawn classifier live in
DeepClusterHook; here is the classification step."""
from __future__ import annotations

import numpy as np
import torch

from ...errors import ConfigError
from ...registry import ALGORITHMS
from ..clustering import cluster_weights
from ..utils import Sobel
from .base import BaseAlgorithm


@ALGORITHMS.register_module()
class DeepCluster(BaseAlgorithm):
    """[Sobel ->] backbone -> neck (AvgPool2dNeck) -> ClsHead over `head.num_classes` clusters, trained
    on the `pseudo_label` DeepClusterDataset gives each sample."""

    def __init__(self, backbone: dict, with_sobel: bool = True, neck: dict | None = None, head: dict | None = None):
        super().__init__(backbone, neck, head)
        if self.head is None:
            raise ConfigError("DeepCluster needs model.head (a ClsHead over the clusters)")
        self.with_sobel = with_sobel
        if with_sobel:
            self.sobel_layer = Sobel()
        check_sobel_input(self)
        self.num_classes = self.head.num_classes
        self.register_buffer("loss_weight", torch.full((self.num_classes,), 1.0 / self.num_classes))

    def check_data(self, num_samples: int, global_batch: int, num_views: int | None) -> None:
        super().check_data(num_samples, global_batch, num_views)
        if self.num_classes > num_samples:
            raise ConfigError(f"model.head.num_classes={self.num_classes} is more clusters than the {num_samples} "
                              f"training images; use at most {num_samples}")

    def extract_feat(self, img: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.backbone(self.sobel_layer(img) if self.with_sobel else img)

    def forward_train(self, img: list[torch.Tensor], pseudo_label: torch.Tensor | None = None,
                      **kwargs) -> dict[str, torch.Tensor]:
        if pseudo_label is None or bool((pseudo_label < 0).any()):
            raise ConfigError("DeepCluster trains on cluster labels: set data.train.type='DeepClusterDataset' and "
                              "add a DeepClusterHook to custom_hooks")
        x = self.extract_feat(img[0])
        if self.neck is not None:
            x = self.neck(x)
        return self.head.loss(self.head(x), pseudo_label, weight=self.loss_weight)

    def set_reweight(self, labels: np.ndarray, reweight_pow: float = 0.5) -> None:
        """Loss weights (1 / cluster size) ** reweight_pow, normalised, as the seed."""
        self.loss_weight.copy_(torch.from_numpy(cluster_weights(labels, self.num_classes, reweight_pow)))


def check_sobel_input(model) -> None:
    """With `with_sobel` the backbone sees the 2 Sobel channels; without, the 3 image channels."""
    conv1 = getattr(model.backbone, "conv1", None)
    want = 2 if model.with_sobel else 3
    if conv1 is not None and conv1.in_channels != want:
        raise ConfigError(f"model.backbone.in_channels={conv1.in_channels} but with_sobel={model.with_sobel} gives "
                          f"the backbone {want} channels; set model.backbone.in_channels={want}")
