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


def dino(student_out, teacher_out, center: torch.Tensor, student_temp: float = 0.1,
         teacher_temp: float = 0.04) -> torch.Tensor:
    """DINO's self-distillation loss (Caron et al. 2021, eq. 3 and Algorithm 1).

    student_out: the student's logits of every crop, a sequence of V [B, K] tensors (or a [V, B, K]
    tensor), the global crops first; teacher_out: the teacher's logits of the global crops, a
    sequence of G [B, K] tensors (G = 2 in the paper), in the same order, so that teacher crop i and
    student crop i are the same view. center: [K] or [1, K].

    P_t = softmax((t - center) / teacher_temp), without gradient (centering and sharpening);
    log P_s = log_softmax(s / student_temp). The cross-entropy -sum_k P_t log P_s is averaged over the
    batch for each pair (teacher crop i, student crop j) with j != i, then averaged over those
    G * V - G pairs, as the paper's code does.
    """
    targets = [F.softmax((t - center) / teacher_temp, dim=-1).detach() for t in teacher_out]
    log_probs = [F.log_softmax(s / student_temp, dim=-1) for s in student_out]
    total, pairs = 0.0, 0
    for i, q in enumerate(targets):
        for j, log_p in enumerate(log_probs):
            if j != i:
                total = total + (-(q * log_p).sum(dim=-1)).mean()
                pairs += 1
    if not pairs:
        raise ValueError(f"dino: no (teacher, student) pair of different crops among {len(targets)} teacher "
                         f"and {len(log_probs)} student crops")
    return total / pairs


def vicreg(z1: torch.Tensor, z2: torch.Tensor, sim_coeff: float = 25.0, std_coeff: float = 25.0,
           cov_coeff: float = 1.0) -> torch.Tensor:
    """VICReg (Bardes, Ponce and LeCun 2022, eq. 1-6) on two views' embeddings [N, D], N >= 2:

        sim_coeff * s(Z, Z') + std_coeff * (v(Z) + v(Z')) / 2 + cov_coeff * (c(Z) + c(Z'))

    s: the mean squared error, (1 / (N D)) sum_{n,d} (z_nd - z'_nd)^2 (the authors' F.mse_loss);
    v(Z) = (1 / D) sum_d max(0, 1 - sqrt(Var(z^d) + 1e-4)), gamma = 1, Var unbiased (N - 1);
    c(Z) = (1 / D) sum_{i != j} C(Z)_ij^2, C(Z) = (Z - mean)^T (Z - mean) / (N - 1).
    Eq. 6 weighs the variance terms by std_coeff each; the authors' code, which the published
    coefficients 25 / 25 / 1 and results come from, averages the two branches (hence the / 2); we
    follow the code. Give it the global batch under data parallelism (the authors gather with
    gradients before computing the loss).
    """
    n, d = z1.shape
    invariance = F.mse_loss(z1, z2)

    def variance_and_covariance(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = z - z.mean(dim=0)
        std = torch.sqrt(z.var(dim=0) + 1e-4)
        cov = z.T @ z / (n - 1)
        off_diag = cov.pow(2).sum() - torch.diagonal(cov).pow(2).sum()
        return F.relu(1 - std).mean(), off_diag / d

    v1, c1 = variance_and_covariance(z1)
    v2, c2 = variance_and_covariance(z2)
    return sim_coeff * invariance + std_coeff * (v1 + v2) / 2 + cov_coeff * (c1 + c2)


def mae_reconstruction(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, norm_pix: bool,
                       eps: float = 1e-6) -> torch.Tensor:
    """MAE's loss (He et al. 2022, sec. 3): the mean over removed patches (mask [N, L], 1 = removed) of
    the per-patch mean squared error between pred and target [N, L, P]. With norm_pix each target
    patch is first normalised by its own mean and (unbiased, as the authors' code) variance + eps."""
    if norm_pix:
        mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + eps) ** 0.5
    per_patch = (pred - target).pow(2).mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum()


def mocov3_contrastive(q: torch.Tensor, k: torch.Tensor, temperature: float, offset: int = 0) -> torch.Tensor:
    """MoCo v3's loss (Chen, Xie and He 2021, Algorithm 1): q [N, D] this process's queries, k [M, D] the
    keys of the whole global batch; query i's positive is key offset + i (offset = rank * N), the other
    keys are its negatives. Cross-entropy of cosine similarities / temperature, times 2 * temperature."""
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    labels = torch.arange(q.shape[0], device=q.device) + offset
    return F.cross_entropy(q @ k.T / temperature, labels) * 2 * temperature


def simmim_reconstruction(x: torch.Tensor, x_rec: torch.Tensor, mask: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """SimMIM's loss (Xie et al. 2022, eq. 1): the L1 distance between the image x and its reconstruction
    x_rec [N, C, H, W] on masked pixels only (mask [N, H, W], 1 = masked), averaged over the masked pixels
    and the channels; eps keeps a batch without masked pixels finite, as the authors' code."""
    mask = mask.to(x.dtype).unsqueeze(1)
    per_pixel = F.l1_loss(x_rec, x, reduction="none")
    return (per_pixel * mask).sum() / (mask.sum() + eps) / x.shape[1]


def cae_loss(logits: torch.Tensor, target: torch.Tensor, latent_pred: torch.Tensor, latent_target: torch.Tensor,
             lambd: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """CAE's two losses (Chen et al. 2022, eq. 3): (reconstruction, alignment).

    reconstruction: the cross-entropy of the decoder's logits [..., K] against the tokenizer's token
    ids [...] of the masked patches, averaged over them; alignment: lambd times the mean squared error
    between the regressor's latents and the teacher's [..., C], the target without gradient."""
    main = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
    return main, lambd * F.mse_loss(latent_pred, latent_target.detach())
