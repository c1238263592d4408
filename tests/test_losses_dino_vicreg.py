"""DINO's and VICReg's losses against their papers' formulas on hand-made tensors."""
from __future__ import annotations

import math

import pytest
import torch

from ssl_lib.models.losses import dino, vicreg

LN3 = math.log(3.0)


def ce(q: list[float], p: list[float]) -> float:
    return -sum(qk * math.log(pk) for qk, pk in zip(q, p))


def dino_case():
    """2 global + 1 local crop, batch 1, 2 prototypes, built so every softmax is a simple fraction."""
    center = torch.tensor([[1.0, -2.0]])
    t_temp, s_temp = 0.04, 0.1
    # (t - center) / 0.04 = [ln 3, 0] -> [3/4, 1/4]; [0, 0] -> [1/2, 1/2]
    teacher = [center + t_temp * torch.tensor([[LN3, 0.0]]), center.clone()]
    # s / 0.1 = [ln 3, 0] -> [3/4, 1/4]; [0, ln 3] -> [1/4, 3/4]; [0, 0] -> [1/2, 1/2]
    student = [s_temp * torch.tensor([[LN3, 0.0]]), s_temp * torch.tensor([[0.0, LN3]]), torch.zeros(1, 2)]
    q = [[0.75, 0.25], [0.5, 0.5]]
    p = [[0.75, 0.25], [0.25, 0.75], [0.5, 0.5]]
    return student, teacher, center, s_temp, t_temp, q, p


def test_dino_averages_the_cross_entropy_over_pairs_of_different_crops_with_the_centred_sharpened_teacher():
    student, teacher, center, s_temp, t_temp, q, p = dino_case()
    expected = (ce(q[0], p[1]) + ce(q[0], p[2]) + ce(q[1], p[0]) + ce(q[1], p[2])) / 4
    assert dino(student, teacher, center, s_temp, t_temp).item() == pytest.approx(expected, rel=1e-6)
    with_same_view = (4 * expected + ce(q[0], p[0]) + ce(q[1], p[1])) / 6
    assert expected != pytest.approx(with_same_view, rel=1e-3)  # the skipped pairs would change it


def test_dino_takes_a_stacked_crops_tensor_and_averages_over_the_batch():
    student, teacher, center, s_temp, t_temp, *_ = dino_case()
    one = dino(student, teacher, center, s_temp, t_temp)
    torch.testing.assert_close(dino(torch.stack(student), torch.stack(teacher), center.squeeze(0), s_temp, t_temp), one)
    # batch 2: the hand case and one whose every distribution is uniform (cross-entropy ln 2)
    student2 = [torch.cat([s, torch.zeros(1, 2)]) for s in student]
    teacher2 = [torch.cat([t, center]) for t in teacher]
    expected = (one.item() + math.log(2.0)) / 2
    assert dino(student2, teacher2, center, s_temp, t_temp).item() == pytest.approx(expected, rel=1e-6)


def test_dino_sends_no_gradient_to_the_teacher_or_the_centre():
    student, teacher, center, s_temp, t_temp, *_ = dino_case()
    student = [s.requires_grad_() for s in student]
    teacher = [t.requires_grad_() for t in teacher]
    center.requires_grad_()
    dino(student, teacher, center, s_temp, t_temp).backward()
    assert all(t.grad is None for t in teacher) and center.grad is None
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in student)


def test_vicreg_is_the_weighted_sum_of_invariance_variance_and_covariance():
    z1 = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])  # per dim: var 2 (unbiased), cov [[2, 2], [2, 2]]
    z2 = torch.zeros(2, 2)  # std sqrt(1e-4) = 0.01 per dim
    invariance = 1.0  # mean of (1, 1, 1, 1)
    variance = (0.0 + (1 - 0.01)) / 2  # z1's hinge is 0 (std > 1), z2's is 0.99; the branches averaged
    covariance = (2.0 ** 2 + 2.0 ** 2) / 2 + 0.0  # z1's two off-diagonal entries squared / D
    assert vicreg(z1, z2, 1.0, 0.0, 0.0).item() == pytest.approx(invariance, rel=1e-6)
    assert vicreg(z1, z2, 0.0, 1.0, 0.0).item() == pytest.approx(variance, rel=1e-6)
    assert vicreg(z1, z2, 0.0, 0.0, 1.0).item() == pytest.approx(covariance, rel=1e-6)
    assert vicreg(z1, z2).item() == pytest.approx(25 * 1.0 + 25 * 0.495 + 4.0, rel=1e-6)  # 41.375


def test_vicreg_variance_uses_the_unbiased_variance_and_covariance_is_centred():
    z = torch.tensor([[5.3, 5.0], [4.7, 5.0]], dtype=torch.float64)  # dim 0: unbiased var 0.18; dim 1: var 0
    hinge = ((1 - math.sqrt(0.18 + 1e-4)) + (1 - math.sqrt(1e-4))) / 2
    assert vicreg(z, z, 0.0, 1.0, 0.0).item() == pytest.approx(hinge, rel=1e-9)
    # uncentred, the off-diagonal entries would be (5.3 * 5 + 4.7 * 5) / 1 = 50; centred they are 0
    assert vicreg(z, z, 0.0, 0.0, 1.0).item() == pytest.approx(0.0, abs=1e-12)
    assert vicreg(z, z, 1.0, 0.0, 0.0).item() == 0.0


def test_vicreg_of_a_split_batch_differs_from_the_global_one_so_ranks_must_gather():
    """Variance and covariance are batch statistics: the mean of per-half losses is not the loss of the
    whole batch, which is why VICReg gathers the embeddings of every rank (with their gradients)."""
    torch.manual_seed(0)
    z1, z2 = torch.randn(8, 4), torch.randn(8, 4)
    whole = vicreg(z1, z2)
    halves = (vicreg(z1[:4], z2[:4]) + vicreg(z1[4:], z2[4:])) / 2
    assert not torch.allclose(whole, halves)
