"""MoCo v1/v2 (He et al. 2020; Chen et al. 2020): v1 and v2 differ only in neck and pipeline."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ...registry import ALGORITHMS
from ..utils import batch_shuffle_ddp, batch_unshuffle_ddp, concat_all_gather
from .base import BaseAlgorithm


@torch.no_grad()
def enqueue(queue: torch.Tensor, queue_ptr: torch.Tensor, keys: torch.Tensor) -> None:
    """Write the global batch's keys (every rank's [N, D], gathered) over the oldest columns of
    queue [D, K] and advance queue_ptr; K must be a multiple of the global batch."""
    keys = concat_all_gather(keys)
    ptr = int(queue_ptr)
    queue[:, ptr:ptr + keys.shape[0]] = keys.T
    queue_ptr[0] = (ptr + keys.shape[0]) % queue.shape[1]


@ALGORITHMS.register_module()
class MoCo(BaseAlgorithm):
    """Query encoder = backbone + neck; key encoder = its momentum copy; negatives from a queue.

    `self.momentum` is a plain attribute so that a hook may schedule it.
    """

    num_views = 2

    def __init__(self, backbone: dict, neck: dict, head: dict, queue_len: int = 65536,
                 feat_dim: int = 128, momentum: float = 0.999):
        super().__init__(backbone, neck, head)
        self.queue_len, self.feat_dim, self.momentum = queue_len, feat_dim, momentum
        self.encoder_k = nn.Sequential(copy.deepcopy(self.backbone), copy.deepcopy(self.neck))
        for p in self.encoder_k.parameters():
            p.requires_grad = False
        self.register_buffer("queue", F.normalize(torch.randn(feat_dim, queue_len), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def momentum_update(self) -> None:
        """k <- m * k + (1 - m) * q for every parameter of the key encoder."""
        params_q = [*self.backbone.parameters(), *self.neck.parameters()]
        for p_q, p_k in zip(params_q, self.encoder_k.parameters()):
            p_k.mul_(self.momentum).add_(p_q.detach(), alpha=1.0 - self.momentum)

    def _dequeue_and_enqueue(self, keys: torch.Tensor) -> None:
        enqueue(self.queue, self.queue_ptr, keys)

    def check_data(self, num_samples: int, global_batch: int, num_views: int | None) -> None:
        super().check_data(num_samples, global_batch, num_views)
        if self.queue_len % global_batch:  # the queue is filled in whole global batches
            raise ConfigError(f"model.queue_len={self.queue_len} is not divisible by the global batch size "
                              f"{global_batch}; pick a multiple of it, e.g. {global_batch * max(1, self.queue_len // global_batch)}")
        if getattr(self.neck, "out_channels", self.feat_dim) != self.feat_dim:
            raise ConfigError(f"model.feat_dim={self.feat_dim} but the neck outputs {self.neck.out_channels}; "
                              f"set model.feat_dim={self.neck.out_channels}")

    def forward_train(self, img: list[torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        im_q, im_k = img[0], img[1]
        q = F.normalize(self.neck(self.backbone(im_q))[0], dim=1)
        with torch.no_grad():
            self.momentum_update()
            im_k, idx_unshuffle = batch_shuffle_ddp(im_k)  # shuffled BN: no leak via batch stats
            k = F.normalize(self.encoder_k(im_k)[0], dim=1)
            k = batch_unshuffle_ddp(k, idx_unshuffle)
        pos = torch.einsum("nc,nc->n", q, k).unsqueeze(-1)
        neg = torch.einsum("nc,ck->nk", q, self.queue.clone())
        losses = self.head(pos, neg)
        self._dequeue_and_enqueue(k)
        return losses
