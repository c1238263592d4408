"""SimCLR (Chen et al. 2020): two views of each image, one encoder, NT-Xent over the global batch."""
from __future__ import annotations

import torch

from ...errors import ConfigError
from ...registry import ALGORITHMS
from ..losses import nt_xent
from ..utils import gather_with_grad
from .base import BaseAlgorithm


@ALGORITHMS.register_module()
class SimCLR(BaseAlgorithm):
    """Both views go through backbone + neck as one batch (BN sees 2N images, as in the seed); the
    embeddings of every rank are gathered, so each of the 2N embeddings of the global batch has the
    other 2N - 2 as negatives. The head (ContrastiveHead) holds the temperature."""

    num_views = 2

    def __init__(self, backbone: dict, neck: dict, head: dict):
        super().__init__(backbone, neck, head)
        if not isinstance(getattr(self.head, "temperature", None), (int, float)):
            raise ConfigError(f"SimCLR takes its temperature from model.head; {type(self.head).__name__} has none: "
                              "use head=dict(type='ContrastiveHead', temperature=0.1)")

    def check_data(self, num_samples: int, global_batch: int, num_views: int | None) -> None:
        super().check_data(num_samples, global_batch, num_views)
        if global_batch < 2:
            raise ConfigError(f"SimCLR needs negatives: a global batch of {global_batch} has none; "
                              "set data.samples_per_gpu x processes >= 2")

    def forward_train(self, img: list[torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        n = img[0].shape[0]
        z = self.neck(self.backbone(torch.cat(img[:2])))[0]
        z = gather_with_grad(torch.stack([z[:n], z[n:]], dim=1))  # [global N, 2, D], rank by rank
        return dict(loss=nt_xent(z[:, 0], z[:, 1], self.head.temperature))
