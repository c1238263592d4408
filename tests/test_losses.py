"""Each loss of ssl_lib.models.losses against its paper's formula, written out with explicit loops
over small hand-made tensors (python floats, no torch in the reference)."""
from __future__ import annotations

import math
import threading

import pytest
import torch

from ssl_lib.models.losses import (barlow_twins, info_nce, info_nce_from_logits, negative_cosine, nt_xent,
                                   sinkhorn, swav, swav_cross_entropy)

Z1 = [[1.0, 2.0], [-1.0, 0.5], [0.3, -2.0]]
Z2 = [[0.5, 1.0], [-2.0, 1.0], [1.0, -1.0]]


def rows(t: torch.Tensor) -> list[list[float]]:
    return t.tolist()


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def unit(a: list[float]) -> list[float]:
    n = math.sqrt(dot(a, a))
    return [x / n for x in a]


def cross_entropy(logits: list[float], target: int) -> float:
    """-log softmax(logits)[target]."""
    return -logits[target] + math.log(sum(math.exp(x) for x in logits))


def test_info_nce_is_moco_cross_entropy_with_the_positive_key_first():
    q, k = [[3.0, 4.0], [1.0, -1.0]], [[1.0, 0.0], [-2.0, 2.0]]
    queue_cols = [unit([1.0, 1.0]), unit([0.0, -1.0]), unit([-3.0, 1.0])]  # K = 3 negatives, unit norm
    t = 0.5
    expected = 0.0
    for qi, ki in zip(q, k):  # the loss normalises q and k itself
        qi, ki = unit(qi), unit(ki)
        logits = [dot(qi, ki) / t] + [dot(qi, neg) / t for neg in queue_cols]
        expected += cross_entropy(logits, 0) / len(q)
    queue = torch.tensor(queue_cols).T  # [D, K]
    got = info_nce(torch.tensor(q), torch.tensor(k), queue, t)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    pos = torch.tensor([[dot(unit(qi), unit(ki))] for qi, ki in zip(q, k)])
    neg = torch.tensor([[dot(unit(qi), c) for c in queue_cols] for qi in q])
    assert info_nce_from_logits(pos, neg, t).item() == pytest.approx(expected, rel=1e-6)


def test_nt_xent_is_simclrs_loss_over_all_2n_anchors_with_the_other_2n_minus_1_as_candidates():
    t = 0.2
    z = [unit(v) for v in Z1 + Z2]  # anchors 0..2 are view 1, 3..5 view 2 of the same images
    n = len(Z1)
    expected = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)  # its positive: the other view of the same image
        sims = {m: dot(z[i], z[m]) / t for m in range(2 * n) if m != i}
        expected += (-sims[j] + math.log(sum(math.exp(s) for s in sims.values()))) / (2 * n)
    assert nt_xent(torch.tensor(Z1), torch.tensor(Z2), t).item() == pytest.approx(expected, rel=1e-6)


def test_negative_cosine_is_simsiams_d_with_no_gradient_through_the_target():
    p = torch.tensor(Z1, requires_grad=True)
    z = torch.tensor(Z2, requires_grad=True)
    expected = -sum(dot(unit(a), unit(b)) for a, b in zip(Z1, Z2)) / len(Z1)
    loss = negative_cosine(p, z)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert z.grad is None and p.grad is not None and p.grad.abs().sum() > 0


def barlow_reference(a: list[list[float]], b: list[list[float]], lambd: float) -> float:
    """Zbontar et al. 2021, eq. 1-2: C_ij = sum_b za_bi zb_bj / (sqrt(sum_b za_bi^2) sqrt(sum_b zb_bj^2)),
    z mean-centred over the batch; loss = sum_i (1 - C_ii)^2 + lambd sum_{i != j} C_ij^2."""
    n, d = len(a), len(a[0])
    mean_a = [sum(a[s][i] for s in range(n)) / n for i in range(d)]
    mean_b = [sum(b[s][i] for s in range(n)) / n for i in range(d)]
    ca = [[a[s][i] - mean_a[i] for i in range(d)] for s in range(n)]
    cb = [[b[s][i] - mean_b[i] for i in range(d)] for s in range(n)]
    loss = 0.0
    for i in range(d):
        for j in range(d):
            num = sum(ca[s][i] * cb[s][j] for s in range(n))
            c = num / (math.sqrt(sum(ca[s][i] ** 2 for s in range(n))) * math.sqrt(sum(cb[s][j] ** 2 for s in range(n))))
            loss += (1 - c) ** 2 if i == j else lambd * c ** 2
    return loss


def test_barlow_twins_is_the_papers_cross_correlation_loss():
    lambd = 0.3
    got = barlow_twins(torch.tensor(Z1), torch.tensor(Z2), lambd).item()
    assert got == pytest.approx(barlow_reference(Z1, Z2, lambd), rel=1e-5)


def test_barlow_twins_of_identical_views_has_a_unit_diagonal_so_only_the_redundancy_term_is_left():
    # C_ii = 1 exactly for identical views (eq. 2 is a cosine); an unbiased std would give (N - 1) / N
    z = torch.tensor(Z1)
    off = barlow_reference(Z1, Z1, 1.0)
    assert barlow_twins(z, z, 1.0).item() == pytest.approx(off, rel=1e-5)
    assert barlow_twins(z, z, 0.0).item() == pytest.approx(0.0, abs=1e-6)
    decorrelated = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert barlow_twins(decorrelated, decorrelated, 5.0).item() == pytest.approx(0.0, abs=1e-6)


SCORES = [[0.9, 0.1, -0.3], [0.2, 0.8, 0.0], [0.5, 0.4, 0.3], [-0.6, 0.7, 0.9]]  # B = 4 samples, K = 3


def sinkhorn_reference(scores: list[list[float]], eps: float, iters: int) -> list[list[float]]:
    """SwAV (Caron et al. 2020) Algorithm 1's sinkhorn, loop by loop: Q = exp(scores / eps)^T [K x B]
    normalised to sum 1; each iteration scales every prototype row to 1/K, then every sample column
    to 1/B; the result, times B, is transposed back to [B x K]."""
    b, k = len(scores), len(scores[0])
    q = [[math.exp(scores[s][p] / eps) for s in range(b)] for p in range(k)]
    total = sum(sum(r) for r in q)
    q = [[v / total for v in r] for r in q]
    for _ in range(iters):
        for p in range(k):
            row = sum(q[p])
            q[p] = [v / row / k for v in q[p]]
        for s in range(b):
            col = sum(q[p][s] for p in range(k))
            for p in range(k):
                q[p][s] = q[p][s] / col / b
    return [[q[p][s] * b for p in range(k)] for s in range(b)]


def test_sinkhorn_matches_swavs_algorithm_written_out_loop_by_loop():
    got = sinkhorn(torch.tensor(SCORES), epsilon=0.5, iters=3)
    assert got.shape == (4, 3)
    torch.testing.assert_close(got, torch.tensor(sinkhorn_reference(SCORES, 0.5, 3)), rtol=1e-5, atol=1e-6)


def test_sinkhorn_codes_are_an_equipartition_each_sample_a_distribution_each_prototype_b_over_k():
    scores = torch.tensor(SCORES)
    q = sinkhorn(scores, epsilon=0.5, iters=3)
    torch.testing.assert_close(q.sum(1), torch.ones(4))  # the last step normalises the samples exactly
    q = sinkhorn(scores, epsilon=0.5, iters=200)  # the prototype marginals converge to B / K
    torch.testing.assert_close(q.sum(0), torch.full((3,), 4 / 3), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(q.sum(1), torch.ones(4))
    assert q.argmax(1).tolist() == [0, 1, 0, 2]  # each sample still leans to its best prototype


def test_sinkhorn_summed_over_two_identical_ranks_equals_one_rank_holding_the_batch_twice():
    scores = torch.tensor(SCORES)
    two_ranks = sinkhorn(scores, epsilon=0.5, iters=3, sum_all=lambda t: 2 * t)
    one_rank = sinkhorn(torch.cat([scores, scores]), epsilon=0.5, iters=3)
    torch.testing.assert_close(two_ranks, one_rank[:4])
    torch.testing.assert_close(two_ranks, one_rank[4:])


def test_sinkhorn_over_two_ranks_holding_different_halves_equals_one_rank_holding_the_whole_batch():
    # two threads stand for two ranks; sum_all adds the tensor both hand in at the same step
    scores = torch.tensor(SCORES)
    halves, out, slots = scores.split(2), [None, None], [None, None]
    barrier = threading.Barrier(2, timeout=30)

    def rank(r: int) -> None:
        def sum_all(t: torch.Tensor) -> torch.Tensor:
            slots[r] = t.clone()
            barrier.wait()
            total = slots[0] + slots[1]
            barrier.wait()
            return total
        out[r] = sinkhorn(halves[r], epsilon=0.5, iters=3, sum_all=sum_all)

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    torch.testing.assert_close(torch.cat(out), sinkhorn(scores, epsilon=0.5, iters=3))
    assert not torch.allclose(out[0], sinkhorn(halves[0], epsilon=0.5, iters=3), atol=1e-3)  # the sums matter


def test_swav_is_the_swapped_prediction_of_each_views_code_from_the_other_views_scores():
    s1, s2 = [[1.0, -1.0, 0.5], [0.2, 0.3, -0.4]], [[0.0, 2.0, -1.0], [1.5, -0.5, 0.1]]
    q1, q2 = [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], [[0.3, 0.3, 0.4], [0.6, 0.4, 0.0]]
    t = 0.1

    def ce(q, s):  # -1/B sum_b sum_k q_bk log softmax(s_b / t)_k
        total = 0.0
        for qb, sb in zip(q, s):
            log_z = math.log(sum(math.exp(x / t) for x in sb))
            total -= sum(qk * (x / t - log_z) for qk, x in zip(qb, sb))
        return total / len(q)

    T = torch.tensor  # noqa: N806
    assert swav_cross_entropy(T(q1), T(s2), t).item() == pytest.approx(ce(q1, s2), rel=1e-6)
    expected = 0.5 * (ce(q1, s2) + ce(q2, s1))
    assert swav(T(s1), T(s2), T(q1), T(q2), t).item() == pytest.approx(expected, rel=1e-6)
    assert expected != pytest.approx(0.5 * (ce(q1, s1) + ce(q2, s2)), rel=1e-3)  # swapped, not matched
