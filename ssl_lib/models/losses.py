"""Losses as pure functions of tensors: no module state and no distributed calls.

Names and signatures are the ones papers and other libraries use, so each can be checked against
its formula. An algorithm that trains on several processes gathers what a loss needs first (or, for
`sinkhorn`, hands in the sum over processes as a function).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def info_nce_from_logits(pos: torch.Tensor, neg: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE: cross-entropy over [pos, neg] / temperature with the positive at index 0.

    pos: [N, 1] similarities to the positive; neg: [N, K] similarities to the negatives.
    """
    logits = torch.cat([pos, neg], dim=1) / temperature
    labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, labels)


def info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float) -> torch.Tensor:
    """MoCo's loss (He et al. 2020, Algorithm 1): q, k [N, D] (normalised here), queue [D, K] negatives."""
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    pos = (q * k).sum(dim=1, keepdim=True)
    return info_nce_from_logits(pos, q @ queue, temperature)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent (Chen et al. 2020, Algorithm 1): each of the 2N embeddings picks its pair among
    the 2N - 1 others by cosine similarity / temperature; the loss is the mean over the 2N samples."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """SimSiam's D(p, z) (Chen and He 2021, Algorithm 1): mean of -cos(p, z), no gradient through z."""
    return -F.cosine_similarity(p, z.detach(), dim=1).mean()


def barlow_twins(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 0.0051) -> torch.Tensor:
    """Barlow Twins (Zbontar et al. 2021, eq. 1-2): C = the cosine similarity of each pair of batch-centred
    embedding dimensions of the two views (D x D), pushed to the identity; off-diagonal terms weigh
    `lambd`. Standardised with the biased std (as the paper's eq. 2 and its code's BatchNorm), so that
    C_ii = 1 for identical views; Algorithm 1's unbiased `std(0)` would cap it at (N - 1) / N."""
    n = z1.shape[0]
    z1 = (z1 - z1.mean(0)) / z1.std(0, unbiased=False)
    z2 = (z2 - z2.mean(0)) / z2.std(0, unbiased=False)
    c = z1.T @ z2 / n
    on_diag = (torch.diagonal(c) - 1).pow(2).sum()
    off_diag = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return on_diag + lambd * off_diag


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, epsilon: float = 0.05, iters: int = 3,
             sum_all: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """SwAV's codes (Caron et al. 2020, Algorithm 1): an equipartition of B samples over K prototypes.

    scores: [B, K] sample-prototype similarities. Returns Q [B, K], each row a distribution over
    prototypes. `sum_all(t)` returns `t` summed over processes (identity by default), so that the
    normalisation spans the global batch when the batch is split over ranks.
    """
    total = sum_all or (lambda t: t)
    q = torch.exp(scores.float() / epsilon).T  # [K, B]
    k = q.shape[0]
    b = total(torch.tensor(float(q.shape[1]), device=q.device))
    q /= total(q.sum())
    for _ in range(iters):
        q /= total(q.sum(dim=1, keepdim=True))  # every prototype gets 1/K of the mass
        q /= k
        q /= q.sum(dim=0, keepdim=True)  # every sample gets 1/B
        q /= b
    return (q * b).T


def swav_cross_entropy(q: torch.Tensor, scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """One swapped prediction: codes q [B, K] of one view predicted from another view's scores [B, K]."""
    return -(q * F.log_softmax(scores / temperature, dim=1)).sum(dim=1).mean()


def swav(scores1: torch.Tensor, scores2: torch.Tensor, q1: torch.Tensor, q2: torch.Tensor,
         temperature: float) -> torch.Tensor:
    """SwAV's swapped prediction for two views: view 1's code from view 2's scores and vice versa,
    averaged (Caron et al. 2020, eq. 1)."""
    return 0.5 * (swav_cross_entropy(q1, scores2, temperature) + swav_cross_entropy(q2, scores1, temperature))
