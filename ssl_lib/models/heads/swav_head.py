"""SwAV's head: prototypes, Sinkhorn codes and the swapped prediction over every crop. Parameter
names follow the seed (`prototypes.weight`) so its checkpoints load."""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ...registry import HEADS
from ..losses import sinkhorn, swav_cross_entropy
from ..utils import get_dist_info


def _sum_over_ranks(t: torch.Tensor) -> torch.Tensor:
    """`t` summed over every process (Sinkhorn normalises over the global batch)."""
    if get_dist_info()[1] > 1:
        dist.all_reduce(t)
    return t


@HEADS.register_module()
class SwAVHead(nn.Module):
    """Input: L2-normalised embeddings of `sum(num_crops)` crops, crop-major ([crop 0 batch, crop 1
    batch, ...]). For each crop in `crops_for_assign`, Sinkhorn turns its prototype scores into codes,
    which every other crop predicts; the loss averages over the other crops, then over the assigned
    crops, as the seed does.

    `queue` ([len(crops_for_assign), L, feat_dim] or None) is set by SwAVHook: the embeddings of the
    last batches, whose scores are prepended to the batch's once the queue is full (`use_queue`).
    """

    def __init__(self, feat_dim: int, sinkhorn_iterations: int = 3, epsilon: float = 0.05,
                 temperature: float = 0.1, crops_for_assign: list[int] = (0, 1), num_crops: list[int] = (2,),
                 num_prototypes: int = 3000):
        super().__init__()
        self.sinkhorn_iterations, self.epsilon, self.temperature = sinkhorn_iterations, epsilon, temperature
        self.crops_for_assign, self.num_crops = list(crops_for_assign), list(num_crops)
        total = sum(self.num_crops)
        if not self.crops_for_assign or any(not 0 <= c < total for c in self.crops_for_assign):
            raise ConfigError(f"SwAVHead: crops_for_assign={self.crops_for_assign} must name crops in "
                              f"0..{total - 1} (num_crops={self.num_crops})")
        if not isinstance(num_prototypes, int) or num_prototypes < 1:
            raise ConfigError(f"SwAVHead: num_prototypes must be a positive int, got {num_prototypes!r}")
        self.use_queue = False
        self.queue: torch.Tensor | None = None
        self.prototypes = nn.Linear(feat_dim, num_prototypes, bias=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():  # prototypes stay on the unit sphere
            self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
        scores = self.prototypes(x)
        n = sum(self.num_crops)
        bs = x.shape[0] // n
        crop = lambda t, v: t[bs * v:bs * (v + 1)]  # noqa: E731
        loss = 0.0
        for i, crop_id in enumerate(self.crops_for_assign):
            with torch.no_grad():
                out = crop(scores, crop_id).detach()
                if self.queue is not None:
                    if self.use_queue or not torch.all(self.queue[i, -1] == 0):  # full: use it
                        self.use_queue = True
                        out = torch.cat([self.queue[i] @ self.prototypes.weight.T, out])
                    self.queue[i, bs:] = self.queue[i, :-bs].clone()
                    self.queue[i, :bs] = crop(x, crop_id).detach()
                q = sinkhorn(out, self.epsilon, self.sinkhorn_iterations, sum_all=_sum_over_ranks)[-bs:]
            others = [swav_cross_entropy(q, crop(scores, v), self.temperature) for v in range(n) if v != crop_id]
            loss = loss + sum(others) / (n - 1)
        return dict(loss=loss / len(self.crops_for_assign))
