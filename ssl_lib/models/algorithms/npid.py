"""NPID (Wu et al. 2018): instance discrimination against a memory bank of every sample's feature."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...errors import ConfigError
from ...registry import ALGORITHMS, MEMORIES, build
from .base import BaseAlgorithm


@torch.no_grad()
def sample_negatives(idx: torch.Tensor, length: int, neg_num: int, ensure_neg: bool = False) -> torch.Tensor:
    """[N, neg_num] indices drawn uniformly from range(length); with `ensure_neg`, draws equal to the
    sample's own index are redrawn until none is left (the seed's `ensure_neg`)."""
    neg = torch.randint(length, (idx.shape[0], neg_num), device=idx.device)
    if ensure_neg:
        while True:
            own = neg == idx.view(-1, 1)
            count = int(own.sum())
            if count == 0:
                break
            neg[own] = torch.randint(length, (count,), device=idx.device)
    return neg


@ALGORITHMS.register_module()
class NPID(BaseAlgorithm):
    """Backbone + neck -> unit feature v; loss = non-parametric softmax of v against its own memory
    row (positive) and `neg_num` random rows (negatives); then the memory rows of the batch move
    towards v. The memory bank (model.memory_bank) holds one row per training sample."""

    num_views = 1

    def __init__(self, backbone: dict, neck: dict, head: dict, memory_bank: dict, neg_num: int = 65536,
                 ensure_neg: bool = False):
        super().__init__(backbone, neck, head)
        self.memory_bank = build(memory_bank, MEMORIES)
        self.neg_num, self.ensure_neg = neg_num, ensure_neg
        out = getattr(self.neck, "out_channels", self.memory_bank.feat_dim)
        if out != self.memory_bank.feat_dim:
            raise ConfigError(f"model.memory_bank.feat_dim={self.memory_bank.feat_dim} but the neck outputs {out}; "
                              f"set model.memory_bank.feat_dim={out}")
        if ensure_neg and self.memory_bank.length < 2:
            raise ConfigError("model.ensure_neg=True needs model.memory_bank.length >= 2: with one sample "
                              "there is no negative to draw")

    def check_data(self, num_samples: int, global_batch: int, num_views: int | None) -> None:
        super().check_data(num_samples, global_batch, num_views)
        if self.memory_bank.length != num_samples:
            raise ConfigError(f"model.memory_bank.length={self.memory_bank.length} but the training split has "
                              f"{num_samples} images; set model.memory_bank.length={num_samples}")

    def forward_train(self, img: list[torch.Tensor], idx: torch.Tensor, **kwargs) -> dict[str, torch.Tensor]:
        feature = F.normalize(self.neck(self.backbone(img[0]))[0], dim=1)  # [N, D]
        bank = self.memory_bank.feature_bank
        neg_idx = sample_negatives(idx, bank.shape[0], self.neg_num, self.ensure_neg)
        pos = (bank[idx] * feature).sum(dim=1, keepdim=True)  # [N, 1]
        neg = torch.bmm(bank[neg_idx], feature.unsqueeze(2)).squeeze(2)  # [N, K]
        losses = self.head(pos, neg)
        self.memory_bank.update(idx, feature.detach())
        return losses
