"""ODC, Online Deep Clustering (Zhan et al. 2020): classify each image into its cluster in a memory
that is updated every step (features by momentum, labels by nearest centroid). The memory's upkeep
between steps lives in ODCHook, its initial clustering in DeepClusterHook(init_memory=True)."""
from __future__ import annotations

import numpy as np
import torch

from ...errors import ConfigError
from ...registry import ALGORITHMS, MEMORIES, build
from ..clustering import cluster_weights
from ..utils import Sobel
from .base import BaseAlgorithm
from .deepcluster import check_sobel_input


@ALGORITHMS.register_module()
class ODC(BaseAlgorithm):
    """[Sobel ->] backbone -> neck (ODCNeck) -> ClsHead; targets are the memory's labels of the batch,
    the loss weighted by cluster size (`set_reweight`)."""

    def __init__(self, backbone: dict, with_sobel: bool = False, neck: dict | None = None, head: dict | None = None,
                 memory_bank: dict | None = None):
        super().__init__(backbone, neck, head)
        if self.neck is None or self.head is None or memory_bank is None:
            raise ConfigError("ODC needs model.neck, model.head and model.memory_bank")
        self.with_sobel = with_sobel
        if with_sobel:
            self.sobel_layer = Sobel()
        check_sobel_input(self)
        self.memory_bank = build(memory_bank, MEMORIES)
        self.num_classes = self.head.num_classes
        if self.memory_bank.num_classes != self.num_classes:
            raise ConfigError(f"model.memory_bank.num_classes={self.memory_bank.num_classes} but "
                              f"model.head.num_classes={self.num_classes}; they must be equal")
        width = getattr(self.neck, "out_channels", None)
        if width is not None and self.memory_bank.feat_dim != width:
            raise ConfigError(f"model.memory_bank.feat_dim={self.memory_bank.feat_dim} but the neck outputs {width}; "
                              f"set model.memory_bank.feat_dim={width}")
        self.register_buffer("loss_weight", torch.full((self.num_classes,), 1.0 / self.num_classes))

    def check_data(self, num_samples: int, global_batch: int, num_views: int | None) -> None:
        super().check_data(num_samples, global_batch, num_views)
        if self.memory_bank.length != num_samples:
            raise ConfigError(f"model.memory_bank.length={self.memory_bank.length} but the training split has "
                              f"{num_samples} images; set model.memory_bank.length={num_samples}")

    def extract_feat(self, img: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.backbone(self.sobel_layer(img) if self.with_sobel else img)

    def forward_train(self, img: list[torch.Tensor], idx: torch.Tensor, **kwargs) -> dict[str, torch.Tensor]:
        if not self.memory_bank.initialized:
            raise ConfigError("ODC's memory is empty: add DeepClusterHook(init_memory=True, ...) to custom_hooks, "
                              "as in odc_resnet50_8xb64-steplr-440e_in1k.py")
        feature = self.neck(self.extract_feat(img[0]))
        labels = self.memory_bank.label_bank[idx.cpu()].to(feature[0].device)
        losses = self.head.loss(self.head(feature), labels, weight=self.loss_weight)
        losses["change_ratio"] = self.memory_bank.update_samples_memory(idx, feature[0].detach())
        return losses

    def set_reweight(self, labels: np.ndarray | None = None, reweight_pow: float = 0.5) -> None:
        """Loss weights (1 / cluster size) ** reweight_pow, normalised, from `labels` or the memory's."""
        labels = self.memory_bank.label_bank.numpy() if labels is None else labels
        self.loss_weight.copy_(torch.from_numpy(cluster_weights(labels, self.num_classes, reweight_pow)))
