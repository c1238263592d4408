"""SwAV (Caron et al. 2020): swapped prediction of online cluster codes, with multi-crop."""
from __future__ import annotations

import itertools

import torch

from ...errors import ConfigError
from ...registry import ALGORITHMS
from .base import BaseAlgorithm


@ALGORITHMS.register_module()
class SwAV(BaseAlgorithm):
    """Backbone over each run of same-size crops (one pass per resolution), SwAVNeck to L2-normalised
    embeddings, SwAVHead for codes and loss. The queue and the prototype freeze live in SwAVHook and
    `optimizer_config.frozen_layers_cfg`."""

    def check_data(self, num_samples: int, global_batch: int, num_views: int | None) -> None:
        super().check_data(num_samples, global_batch, num_views)
        crops = sum(self.head.num_crops)
        if num_views is not None and num_views != crops:
            raise ConfigError(f"SwAV: data.train.num_views gives {num_views} views per sample but "
                              f"model.head.num_crops={self.head.num_crops} sums to {crops}; set both from one "
                              f"num_crops list (the seed's `num_crops`)")

    def forward_train(self, img: list[torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        feats = [self.backbone(torch.cat(list(views)))
                 for _, views in itertools.groupby(img, key=lambda v: v.shape[-1])]
        return self.head(self.neck(feats)[0])
