"""The VOC07 SVM and low-shot SVM protocols of the seed (Facebook's fair_self_supervision_benchmark
scripts, which the seed carries over unchanged), with one batched solver in place of a process pool
of sklearn fits.

Every SVM is the seed's `LinearSVC(loss="squared_hinge", penalty="l2", dual=True, intercept_scaling=1,
class_weight={1: 2, -1: 1})`: with x~ = [x, 1] and w~ = [w, b] (the bias regularised like a weight)

    minimise  0.5 * |w~|^2 + C * sum_i cw_i * max(0, 1 - y_i * w~.x~_i)^2,   cw = 2 for y = 1, 1 for y = -1.

The solver works in the kernel form w~ = sum_i beta_i x~_i over one Gram matrix K = X~ X~^T per layer,
which every class, cost, cross-validation fold and low-shot sample shares (each problem is a mask and
a label column over it), and solves them all at once:
  1. all-active start: with every training point inside the margin the problem is a weighted ridge
     regression, (K + D) beta = y with D = 1 / (2 C cw); every cost is a shift of one system, so one
     multi-shift conjugate-gradient run per class and fold solves all costs together;
  2. Newton with exact line search on the active set (Keerthi & DeCoste 2005, "modified finite
     Newton"), started from the ridge solution where that run converged (all those problems in one
     batch), else from the next smaller cost's solution (cost by cost in increasing order), or from a
     given point (the refit: from the cross-validation fits at its cost): the Newton system
     (K_II + D_I) beta_I = y_I is solved by a Cholesky factorisation (refined to float64 accuracy) where
     the active set I is small or the cost large, else by conjugate gradients preconditioned with K's
     top eigenvectors, all problems of a batch together. A problem stops when its active set no longer
     changes after a full exact step (then it is at the exact optimum, the one liblinear's dual
     coordinate descent approaches) or when a step moves its decision values by less than the stopping
     tolerance (see `solve_svms`).
Tests check the decision values, the chosen costs and the APs against sklearn's LinearSVC.
"""
from __future__ import annotations

import ctypes
import functools
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch

SEED_COSTS = [1.0, 10.0, 100.0] + [0.5 ** n for n in range(4, 20)]
LOW_SHOT_KS = [1, 2, 4, 8, 16, 32, 64, 96]
POS_WEIGHT = 2.0  # class_weight={1: 2, -1: 1}
PRECONDITIONER_RANK = 64  # 32 to 256 tried at VOC07 size: 64 the fastest (fewer CG steps vs a cheaper M)
CHOLESKY_ALWAYS = 256
CHOLESKY_BATCH_MAX = 256  # larger active sets are factorised one at a time, at their own size
REFINE = 1  # refinements of a float32 Cholesky solution: 1e-6 relative at C = 100, far below the 5 % steps at
            # which float32 problems stop (two: the same Newton steps and decision values at VOC07 size)


def normalize_rows(x):
    """x / (L2 norm + 1e-5) per row, as the seed's svm_helper.normalize_features (numpy or torch)."""
    if isinstance(x, torch.Tensor):
        return x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + 1e-5)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-5)


# ----------------------------------------------------------------------------------------- metrics

def _ap_rows(scores: torch.Tensor, positive: torch.Tensor, valid: torch.Tensor, voc: bool) -> torch.Tensor:
    """Average precision of each row over its `valid` entries.

    voc=True: the seed's test AP (svm_helper.get_precision_recall): descending scores, precision made
    monotone (max to the right), summed over the recall steps, i.e. the mean over positives of the best
    precision at or below their rank. voc=False: sklearn's average_precision_score, which cross_val_score
    uses for the seed's cost choice: precision at each distinct threshold, no interpolation."""
    scores = torch.where(valid, scores, torch.tensor(-math.inf, dtype=scores.dtype, device=scores.device))
    if voc or scores.device.type != "cpu":
        order = torch.argsort(scores, dim=1, descending=True, stable=True)
    else:  # tied scores count as one threshold, so their order is free: numpy's quicksort, 3x torch's sort
        order = torch.from_numpy(np.argsort(-scores.numpy(), axis=1))
    s = torch.gather(scores, 1, order)
    pos = torch.gather(positive & valid, 1, order).double()
    ok = torch.gather(valid, 1, order)
    tp = torch.cumsum(pos, 1)
    seen = torch.cumsum(ok.double(), 1)
    prec = torch.where(ok, tp / seen.clamp(min=1), torch.zeros_like(tp))
    n = s.shape[1]
    if voc:
        at = torch.flip(torch.cummax(torch.flip(prec, [1]), 1).values, [1])
    elif not bool(((s[:, 1:] == s[:, :-1]) & ok[:, 1:]).any()):
        at = prec
    else:  # the precision where each tie group of scores ends
        idx = torch.arange(n, device=s.device).expand_as(s)
        ends = torch.ones_like(ok)
        ends[:, :-1] = s[:, 1:] != s[:, :-1]
        last = torch.where(ends, idx, torch.full_like(idx, n))
        last = torch.flip(torch.cummin(torch.flip(last, [1]), 1).values, [1]).clamp(max=n - 1)
        at = torch.gather(prec, 1, last)
    return (pos * at).sum(1) / pos.sum(1)


def voc_ap(scores, labels) -> float:
    """VOC "all points" AP of one class: labels 1 present, -1 absent, 0 difficult (left out)."""
    scores, labels = torch.as_tensor(np.asarray(scores, dtype=np.float64)), torch.as_tensor(np.asarray(labels))
    return float(_ap_rows(scores[None], labels[None] == 1, labels[None] != 0, voc=True)[0])


def average_precision(scores, targets) -> float:
    """sklearn's average_precision_score for 1 / -1 targets (the seed's cross-validation score)."""
    scores, targets = torch.as_tensor(np.asarray(scores, dtype=np.float64)), torch.as_tensor(np.asarray(targets))
    return float(_ap_rows(scores[None], targets[None] == 1, torch.ones_like(targets[None], dtype=torch.bool),
                          voc=False)[0])


def stratified_folds(y: np.ndarray, n_splits: int) -> np.ndarray:
    """Fold index of each sample, as sklearn's StratifiedKFold(n_splits, shuffle=False), which the
    seed's cross_val_score(cv=3) uses: per label, consecutive blocks in data order, the fold sizes
    dealt round-robin over the sorted labels."""
    y = np.asarray(y)
    _, first, inverse = np.unique(y, return_index=True, return_inverse=True)
    _, perm = np.unique(first, return_inverse=True)
    enc = perm[inverse.reshape(-1)]
    counts = np.bincount(enc)
    if n_splits > counts.min():
        raise ValueError(f"{n_splits} folds need {n_splits} samples of each label, the rarest has {counts.min()}")
    order = np.sort(enc)
    alloc = np.asarray([np.bincount(order[i::n_splits], minlength=len(counts)) for i in range(n_splits)])
    folds = np.empty(len(y), dtype=np.int64)
    for k in range(len(counts)):
        folds[enc == k] = np.arange(n_splits).repeat(alloc[:, k])
    return folds


# ------------------------------------------------------------------------------------------ solver

@dataclass
class SolverStats:
    problems: int = 0
    all_active: int = 0          # solved by the multi-shift ridge start alone
    newton_steps: int = 0        # (problem, Newton step) pairs
    cholesky_steps: int = 0
    cg_steps: int = 0
    ridge_iterations: int = 0    # multi-shift CG iterations (one product with K for every sub-problem)
    cg_iterations: int = 0       # CG iterations of the Newton steps (one product with K for those)
    line_search_iterations: int = 0
    not_converged: int = 0


def gram(a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """x~_i . x~_j: the dot products with the constant bias feature 1 appended (intercept_scaling=1).
    With b None, K is symmetric: its upper block rows are computed and mirrored (10 of 16 blocks)."""
    if b is not None or a.dim() != 2 or len(a) < 1024:
        return _mm(a, (a if b is None else b).T).add_(1.0)
    n = len(a)
    out = torch.empty(n, n, dtype=a.dtype, device=a.device)
    edges = [n * i // 4 for i in range(5)]
    for lo, hi in zip(edges[:-1], edges[1:]):
        out[lo:hi, lo:] = _mm(a[lo:hi], a[lo:].T)
        out[hi:, lo:hi] = out[lo:hi, hi:].T
    return out.add_(1.0)


# Thread use. On a CPU that another process also uses, every parallel region of 2 threads waits for
# the descheduled one: elementwise ops on a few MB, QR, eigh, small Cholesky factorisations and
# triangular solves then run 10 to 500 times slower than on one thread. On an idle CPU the same ops
# run up to twice as fast on 2 threads (VOC07 size, 2048 dims: 6.2 s against 9.7 s on one thread). So
# the protocols time one elementwise op on all threads against one thread when they start, and run on
# one thread unless all of them pay; their large products (with K, the features) always use them all.
_product_threads: int | None = None
_other_threads = 1


# Denormals: the iterates of the larger costs hold many entries that decay below float32's normal
# range (1e-38); on x86 every arithmetic op on one takes a slow microcode path, and a product with K
# then runs 20x slower (1.4 s instead of 0.06 s at VOC07 size). They are far below any tolerance, so
# the solver flushes them to zero.


def _threads_pay(threads: int, repeats: int = 5) -> bool:
    """Whether an elementwise op on 16 MB runs at least 1.4x faster on `threads` threads than on one
    (best of `repeats` each, interleaved): false where other processes hold the cores."""
    if threads <= 1:
        return False
    x = torch.ones(1 << 22)
    best = {1: math.inf, threads: math.inf}
    for _ in range(repeats):
        for t in best:
            torch.set_num_threads(t)
            start = time.perf_counter()
            torch.mul(x, 1.5, out=x)
            best[t] = min(best[t], time.perf_counter() - start)
    torch.set_num_threads(threads)
    return best[1] >= 1.4 * best[threads]


def _thread_policy(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        global _product_threads, _other_threads
        if _product_threads is not None:  # nested: the outer call has set it up
            return fn(*args, **kwargs)
        _product_threads = torch.get_num_threads()
        _other_threads = _product_threads if _threads_pay(_product_threads) else 1
        torch.set_num_threads(_other_threads)
        flush = torch.set_flush_denormal(True)  # False where the CPU cannot: then nothing to restore
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(_product_threads)
            _product_threads = None
            if flush:
                torch.set_flush_denormal(False)
    return wrapper


def _mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if _product_threads is None or _other_threads == _product_threads or a.device.type != "cpu":
        return a @ b
    torch.set_num_threads(_product_threads)
    try:
        return a @ b
    finally:
        torch.set_num_threads(_other_threads)


def _mm_cols(K: torch.Tensor, x: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """K @ x on the columns `cols` (G, s) that any group needs, zeros elsewhere: a product costs about
    its column count, and late in a solve only a few problems are still working."""
    need = cols.any(0)
    if bool(need.all()):
        return _mm(K, x)
    out = torch.zeros_like(x)
    if bool(need.any()):
        out[..., need] = _mm(K, x[..., need])
    return out


@_thread_policy
def solve_svms(K: torch.Tensor, y: torch.Tensor, train: torch.Tensor, costs: torch.Tensor, *,
               tol: float | None = None, max_newton: int = 100, cholesky_max: int = 2048,
               start: torch.Tensor | None = None, V: torch.Tensor | None = None,
               stats: SolverStats | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve many squared-hinge SVMs over shared Gram matrices.

    K:     (G, n, n) Gram matrices (see `gram`), one per group of rows.
    y:     (G, n, s) labels 1 / -1 of s sub-problems (a class, a fold, a sample) over each group.
    train: (G, n, s) bool, the rows each sub-problem trains on (held-out and unused rows False).
    costs: (s, c) costs, each row ascending; sub-problem j is solved for each of its c costs.
    start: (G, n, s, c) a starting beta (e.g. from solutions on overlapping rows); without it, each
           problem starts from its ridge solution or the next smaller cost's solution.
    V:     (G, n, k) K's top eigenvectors scaled so that V V^T is K's best rank-k part, where known (see
           `_nystrom`); else computed when a CG step first needs them (the CG steps' preconditioner).
    Returns beta (G, n, s, c) with w~ = sum_i beta_i x~_i, and f = K beta (G, n, s, c), the decision
    values on all n rows of the group (the held-out ones included).
    """
    G, n, s = y.shape
    c = costs.shape[1]
    dt = K.dtype
    # float32: the ridge run's residuals to 1e-3 relative, the Newton steps' CG to 10 tol, and a problem stops
    # once a Newton step moves its decision values by less than 50 tol = 5 % of their largest. The protocols
    # use the ranking of the decision values only: at VOC07 size (2048 dims) the cross-validation APs are
    # then within 0.11 points of the exact optimum's (mean 0.003), where those of the seed's liblinear
    # (tol=1e-4) are within 0.34 (mean 0.007); a fifth fewer Newton steps than stopping at 10 tol, a quarter
    # fewer CG iterations than at tol. float64 (the tests against sklearn): 1e-9, steps below 1e-8.
    tol = tol if tol is not None else (1e-3 if dt == torch.float32 else 1e-9)
    cg_tol, stop = (10 * tol, 50 * tol) if dt == torch.float32 else (tol, 10 * tol)
    stats = stats if stats is not None else SolverStats()
    stats.problems += G * s * c
    y = y.to(dt)
    omega = torch.where(train, torch.where(y > 0, POS_WEIGHT, 1.0), 0.0).to(dt)
    costs = costs.to(dt)
    if start is None:
        beta, f, ridge_done, done = _ridge_all_costs(K, y, omega, costs, tol, stats)
    else:  # Newton from the given point, every problem in one batch
        beta = torch.where(train[..., None], start.to(dt), 0)
        f = _mm(K, beta.flatten(-2)).unflatten(-1, (s, c))
        ridge_done = torch.ones(G, s, c, dtype=torch.bool, device=K.device)
        done = ~ridge_done
    stats.all_active += int(done.sum())
    todo = ~done                                                                      # (G, s, c)
    # Newton starts from the ridge solution of the same cost where the ridge run converged (and at the
    # smallest cost): those problems are independent and run in one batch. The others start from the
    # next smaller cost's solution (its active set is close to this cost's, a superset mostly), so they
    # run cost by cost afterwards.
    from_ridge = ridge_done.clone()
    from_ridge[..., 0] = True
    batch = (todo & from_ridge).any(0).flatten()                                      # (s * c,) columns
    chain = (todo & ~from_ridge).any(0)                                               # (s, c)
    # one preconditioner slot per batched column, and one per sub-problem for the chain of costs
    pre = _Preconditioner(K, slots=int(batch.sum()) + s, V=V)  # K's top eigenvectors, when a CG step first needs them
    if batch.any():
        sub, jj = torch.nonzero(batch.view(s, c), as_tuple=True)
        go = (todo & from_ridge)[:, sub, jj]
        bj, fj = _newton(K, y[..., sub], omega[..., sub], costs[sub, jj], beta[:, :, sub, jj], f[:, :, sub, jj],
                         go, cg_tol, stop, max_newton, cholesky_max, stats, pre.view(torch.arange(len(sub), device=K.device)))
        beta[:, :, sub, jj] = torch.where(go[:, None], bj, beta[:, :, sub, jj])
        f[:, :, sub, jj] = torch.where(go[:, None], fj, f[:, :, sub, jj])
    first_chain = int(batch.sum())
    for j in range(1, c):
        cols = chain[:, j]
        if not cols.any():
            continue
        go = todo[:, cols, j] & ~from_ridge[:, cols, j]
        bj, fj = _newton(K, y[..., cols], omega[..., cols], costs[cols, j], beta[:, :, cols, j - 1],
                         f[:, :, cols, j - 1], go, cg_tol, stop, max_newton, cholesky_max, stats,
                         pre.view(first_chain + torch.nonzero(cols).flatten()))
        beta[:, :, cols, j] = torch.where(go[:, None], bj, beta[:, :, cols, j])
        f[:, :, cols, j] = torch.where(go[:, None], fj, f[:, :, cols, j])
    return beta, f


def _ridge_all_costs(K, y, omega, costs, tol, stats, max_iter: int = 300, ridge_max: float = 1 / 16):
    """Multi-shift CG (Jegerlehner 1996) for (S K S + sigma I) z = S y, S = sqrt(omega), sigma = 1/(2C):
    every cost of a sub-problem from one Krylov space; beta = S z. A problem whose training rows all
    end up inside the margin (y f < 1) is then solved exactly. The shifted iterates are kept as
    coefficients over the residuals r_k, and K S r_k comes from the base system's products, so the
    decision values f = K beta of every cost cost no product of their own."""
    G, n, s = y.shape
    c = costs.shape[1]
    S = omega.sqrt()
    sigma = 1.0 / (2.0 * costs)                      # (s, c), descending along c
    sigma0 = sigma[:, -1]                            # the base: the largest cost
    delta = (sigma - sigma0[:, None])[None]          # (1, s, c)
    b = S * y
    r = b.clone()
    p0 = b.clone()
    rr = (r * r).sum(1)                               # (G, s)
    bnorm = rr.sqrt()
    zeta_prev = torch.ones(G, s, c, dtype=K.dtype, device=K.device)
    zeta = torch.ones_like(zeta_prev)
    alpha_prev = torch.ones(G, s, dtype=K.dtype, device=K.device)
    beta_prev = torch.zeros_like(alpha_prev)
    live = torch.ones(G, s, c, dtype=torch.bool, device=K.device)
    # Large costs are far from all-active and slow to converge here: Newton takes them from the smaller ones.
    wanted = (costs <= ridge_max)[None]
    basis, k_basis = [], []                           # r_k and K S r_k
    pc = torch.zeros(G, s, c, max_iter + 1, dtype=K.dtype, device=K.device)   # shifted directions, over r_k
    xc = torch.zeros_like(pc)                                                 # shifted iterates, over r_k
    pc[..., 0] = 1
    ksp_prev = None
    for k in range(max_iter):
        stats.ridge_iterations += 1
        col = live.any(-1)                            # (G, s): a column runs while any of its costs does
        ksp = _mm(K, S * p0)
        basis.append(r)
        k_basis.append(ksp if k == 0 else ksp - beta_prev[:, None] * ksp_prev)
        q = S * ksp + sigma0 * p0
        alpha = rr / (p0 * q).sum(1).clamp(min=1e-300)
        denom = alpha[..., None] * beta_prev[..., None] * (zeta_prev - zeta) + \
            zeta_prev * alpha_prev[..., None] * (1 + delta * alpha[..., None])
        zeta_next = zeta * zeta_prev * alpha_prev[..., None] / denom
        alpha_s = alpha[..., None] * zeta_next / zeta
        xc = torch.where(live[..., None], xc + alpha_s[..., None] * pc, xc)
        r_next = r - alpha[:, None] * q
        rr_next = (r_next * r_next).sum(1)
        beta_cg = rr_next / rr.clamp(min=1e-300)
        beta_s = beta_cg[..., None] * (zeta_next / zeta) ** 2
        keep = col[:, None]
        p0 = torch.where(keep, r_next + beta_cg[:, None] * p0, p0)
        pc = torch.where(live[..., None], beta_s[..., None] * pc, pc)
        pc[..., k + 1] = torch.where(live, zeta_next, 0)
        r = torch.where(keep, r_next, r)
        ksp_prev = ksp
        zeta_prev, zeta = torch.where(live, zeta, zeta_prev), torch.where(live, zeta_next, zeta)
        alpha_prev, beta_prev = torch.where(col, alpha, alpha_prev), torch.where(col, beta_cg, beta_prev)
        rr = torch.where(col, rr_next, rr)
        live &= (zeta.abs() * rr.sqrt()[..., None]) > tol * bnorm[..., None]
        if not (live & wanted).any():
            break
    converged = ~live
    m = len(basis)
    coef = xc[..., :m].reshape(G * s, c, m).mT                                         # (G*s, m, c)

    def combine(vectors):                                                              # sum_k coef_k v_k
        v = torch.stack(vectors, -1).permute(0, 2, 1, 3).reshape(G * s, n, m)
        return (v @ coef).reshape(G, s, n, c).permute(0, 2, 1, 3)

    beta = S[..., None] * combine(basis)
    f = combine(k_basis)
    inside = ((y[..., None] * f < 1) | (omega[..., None] == 0)).all(1)
    return beta, f, converged, converged & inside


def _newton(K, y, omega, cost, beta, f, todo, tol, stop, max_newton, cholesky_max, stats, pre):
    """Modified finite Newton for one cost per sub-problem (cost: (s,)) on the `todo` (G, s) problems."""
    G, n, s = y.shape
    todo = todo.clone()
    for _ in range(max_newton):
        if not todo.any():
            break
        active = (omega > 0) & (y * f < 1)
        size = active.sum(1)
        # Cholesky where the active set is small; preconditioned CG where it is large, and for the
        # moderate costs, where the preconditioned system is well conditioned (1 + 4 C lambda_k+1)
        small = (size <= min(CHOLESKY_ALWAYS, cholesky_max)) | ((size <= cholesky_max) & (cost > 1)[None])
        small &= todo
        large = todo & ~small
        target = beta.clone()
        exact = torch.zeros_like(todo)
        if small.any():
            target_s, ok = _cholesky_step(K, y, omega, cost, active, small)
            target = torch.where(small[:, None], target_s, target)
            exact |= small & ok
            stats.cholesky_steps += int(small.sum())
        if large.any():
            M = pre.woodbury(torch.where(active, omega, 0), cost)
            target_l, k_target_l, ok = _cg_step(K, y, omega, cost, active, large, beta, tol, stats, pre.V, M)
            target = torch.where(large[:, None], target_l, target)
            exact |= large & ok
            stats.cg_steps += int(large.sum())
        stats.newton_steps += int(todo.sum())
        d = torch.where(todo[:, None], target - beta, 0)
        delta = _mm_cols(K, d, small)
        if large.any():  # a CG step carries K target along
            delta = torch.where(large[:, None], k_target_l - f, delta)
        t = _line_search(beta, f, d, delta, y, omega, cost, stats)
        t = torch.where(todo, t, torch.zeros_like(t))
        beta = beta + t[:, None] * d
        f = f + t[:, None] * delta
        new_active = (omega > 0) & (y * f < 1)
        settled = (new_active == active).all(1) & ((t - 1).abs() < 1e-6) & exact
        # or when the decision values no longer move (points sitting on the margin can flip forever)
        tiny = (t <= 0) | ((t[:, None] * delta).abs().amax(1) <= stop * f.abs().amax(1).clamp(min=1))
        todo &= ~(settled | tiny)
    stats.not_converged += int(todo.sum())
    return beta, f


def _cholesky_step(K, y, omega, cost, active, which):
    """beta_I = (K_II + D_I)^-1 y_I for the `which` problems, to float64 accuracy. Small active sets are
    batched by padded size; large ones one at a time at their own size (a batch of them spends more on
    gathering, padding and masking the blocks than on the factorisations)."""
    G, n, s = y.shape
    out = torch.zeros(G, n, s, dtype=K.dtype, device=K.device)
    ok = torch.zeros(G, s, dtype=torch.bool, device=K.device)
    gi, si = torch.nonzero(which, as_tuple=True)
    sizes = active[gi, :, si].sum(1)
    order = torch.argsort(sizes)
    gi, si, sizes = gi[order], si[order], sizes[order]
    start = 0
    budget = 2 ** 26  # float64 entries per batch (512 MiB)
    sizes_l = sizes.tolist()
    while start < len(gi) and sizes_l[start] <= CHOLESKY_BATCH_MAX:
        L = min(-(-max(sizes_l[start], 1) // 64) * 64, n)  # pad to a multiple of 64: few shapes repeat
        stop = start + 1
        while stop < len(gi) and sizes_l[stop] <= L and (stop - start + 1) * L * L <= budget:
            stop += 1
        g, j = gi[start:stop], si[start:stop]
        act = active[g, :, j]                                   # (B, n)
        # the active row indices, padded: position k < size holds the k-th active row
        idx = torch.argsort((~act).to(torch.int8), dim=1, stable=True)[:, :L]
        pad = torch.arange(L, device=K.device)[None] >= act.sum(1, keepdim=True)
        Kb = K[g[:, None, None], idx[:, :, None], idx[:, None, :]]
        Kb = torch.where(pad[:, :, None] | pad[:, None, :], 0.0, Kb)
        w = omega[g, :, j].gather(1, idx).double()
        dvec = torch.where(pad, 1.0, 1.0 / (2.0 * cost[j, None].double() * w.clamp(min=1e-300)))
        rhs = torch.where(pad, 0.0, y[g, :, j].gather(1, idx).double())
        sol, info = _spd_solve(Kb, dvec, rhs, refine=REFINE)
        sol = torch.where(pad, 0.0, sol).to(K.dtype)
        full = torch.zeros(len(g), n, dtype=K.dtype, device=K.device).scatter_(1, idx, sol)
        full = torch.where(act, full, 0)
        out[g, :, j] = full
        ok[g, j] = info == 0
        start = stop
    for g, j in zip(gi[start:].tolist(), si[start:].tolist()):
        idx = torch.nonzero(active[g, :, j]).flatten()
        Kb = torch.take(K[g], idx[:, None] * n + idx[None, :])
        dvec = 1.0 / (2.0 * float(cost[j]) * omega[g, idx, j].double())
        sol, info = _spd_solve(Kb[None], dvec[None], y[g, idx, j].double()[None], refine=REFINE)
        out[g, idx, j] = sol[0].to(K.dtype)
        ok[g, j] = info[0] == 0
    return out, ok


def _lapack_spotrf():
    """LAPACK's spotrf from torch's own CPU library (MKL), or None where it is not exported there.
    torch.linalg.cholesky_ex copies its input into column-major order and zeroes the other triangle of
    the factor, which at 300 to 1000 rows costs as much as the factorisation (measured: 0.91 -> 0.66 ms
    at 500 rows, 4.2 -> 2.5 ms at 1000)."""
    try:
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        fn = lib.spotrf_
    except (OSError, AttributeError):
        return None
    fn.restype = None
    return fn


_SPOTRF = _lapack_spotrf()


def _cholesky(A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The lower Cholesky factor of each A[b] and LAPACK's info (0: positive definite). Large float32 CPU
    matrices are factorised in place by spotrf; their upper triangle then still holds A's, which the
    triangular solves (lower or, transposed, upper) never read."""
    if _SPOTRF is None or A.dtype != torch.float32 or A.device.type != "cpu" or A.shape[-1] < 128 \
            or not A.is_contiguous():
        return torch.linalg.cholesky_ex(A)
    n, info = ctypes.c_int(A.shape[-1]), ctypes.c_int(0)
    out = torch.zeros(len(A), dtype=torch.int32)
    for b in range(len(A)):
        # a row-major symmetric matrix is its own column-major transpose: "U" there is the lower factor here
        _SPOTRF(ctypes.c_char_p(b"U"), ctypes.byref(n), ctypes.c_void_p(A[b].data_ptr()), ctypes.byref(n),
                ctypes.byref(info))
        out[b] = info.value
    return A, out


def _spd_solve(Kb: torch.Tensor, dvec: torch.Tensor, rhs: torch.Tensor, refine: int = 2):
    """(Kb + diag(dvec))^-1 rhs in float64, batched. A float32 Kb is factorised in float32 (1.6x faster;
    Kb is PSD and dvec >= 1 / (4 C), so the factorisation holds at the seed's costs) and the solution
    refined against the float64 residual; each round gains about 1 / (cond * 6e-8): at C = 100 and
    cond ~1e5, 1e-3 -> 1e-6 -> 1e-9 relative. A float32 Kb is overwritten (the callers gather it afresh)."""
    A = Kb.to(torch.float64, copy=True)
    A.diagonal(dim1=1, dim2=2).add_(dvec)
    if Kb.dtype == torch.float64:
        factor, refine = A, 0
    else:
        factor = Kb
        factor.diagonal(dim1=1, dim2=2).add_(dvec.to(Kb.dtype))
    chol, info = _cholesky(factor)

    def solve(b):
        half = torch.linalg.solve_triangular(chol, b.to(chol.dtype)[..., None], upper=False)
        return torch.linalg.solve_triangular(chol.mT, half, upper=True)[..., 0].double()

    sol = solve(rhs)
    for _ in range(refine):
        sol = sol + solve(rhs - (A @ sol[..., None])[..., 0])
    return sol, info


class _Preconditioner:
    """The parts of the CG steps' preconditioner that outlive one Newton step: V (V V^T ~ K, rank k) and,
    per slot (a problem, or a chain of costs of one sub-problem), A = V^T diag(w) V for the weights
    w = omega on its active set. M = I + 2 C A changes with the cost by a scale and with the active set
    only in the rows that join or leave it, so A is updated by those rows instead of rebuilt from all n
    rows at every step. A slot starts empty (w = 0); A is a product of the weight changes with the rows'
    outer products v_i v_i^T (their upper triangles), kept for all rows, as the first updates of a
    Newton run change most rows."""

    def __init__(self, K: torch.Tensor, slots: int, V: torch.Tensor | None = None):
        self.K, self.slots, self.V = K, slots, V
        self.A = self.w = self.outer = None

    def view(self, slots: torch.Tensor) -> "_PreconditionerView":
        return _PreconditionerView(self, slots)

    def update(self, idx: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """A of slots `idx` for their new weights w (G, n, len(idx)); returns A[:, idx] (float64)."""
        G, n = w.shape[:2]
        if self.A is None:
            if self.V is None:
                self.V = _top_eigen(self.K, min(PRECONDITIONER_RANK, n))
            k = self.V.shape[-1]
            self.upper = tuple(torch.triu_indices(k, k, device=w.device))
            self.outer = _upper_outer(self.V)                                              # (G, n, k(k+1)/2)
            self.A = torch.zeros(G, self.slots, k, k, dtype=torch.float64, device=w.device)
            self.w = torch.zeros(G, n, self.slots, dtype=w.dtype, device=w.device)
        diff = w - self.w[..., idx]                                                        # (G, n, j)
        changed = (diff != 0).any(2)                                                       # (G, n)
        L = int(changed.sum(1).max())
        if 4 * L > n:    # most rows: one product with all rows' outer products
            packed = _mm(diff.mT, self.outer)
        elif L:          # a few rows: their outer products
            # the changed rows first; a group with fewer takes unchanged rows too, whose weight change is 0
            rows = torch.argsort((~changed).to(torch.int8), dim=1, stable=True)[:, :L]
            Vr = self.V.gather(1, rows[..., None].expand(-1, -1, self.V.shape[-1]))
            dr = diff.gather(1, rows[..., None].expand(-1, -1, diff.shape[-1]))            # (G, L, j)
            packed = _mm(dr.mT, _upper_outer(Vr))
        if L:
            k = self.V.shape[-1]
            full = torch.zeros(G, len(idx), k, k, dtype=torch.float64, device=w.device)
            full[(..., *self.upper)] = packed.double()
            full[(..., *self.upper[::-1])] = packed.double()
            self.A[:, idx] += full
            self.w[..., idx] = w
        return self.A[:, idx]


def _upper_outer(V: torch.Tensor) -> torch.Tensor:
    """The upper triangles of the rows' outer products v v^T, row-major: (..., k) -> (..., k (k + 1) / 2)."""
    k = V.shape[-1]
    out = torch.empty(*V.shape[:-1], k * (k + 1) // 2, dtype=V.dtype, device=V.device)
    at = 0
    for a in range(k):
        torch.mul(V[..., a:a + 1], V[..., a:], out=out[..., at:at + k - a])
        at += k - a
    return out


class _PreconditionerView:
    """`_Preconditioner` restricted to the sub-problems one Newton run works on."""

    def __init__(self, pre: _Preconditioner, idx: torch.Tensor):
        self.pre, self.idx = pre, idx

    @property
    def V(self):
        return self.pre.V

    def woodbury(self, w: torch.Tensor, cost: torch.Tensor) -> torch.Tensor:
        """M = I + V^T diag(2 C w) V for each sub-problem (G, j, k, k), float64."""
        A = self.pre.update(self.idx, w)
        eye = torch.eye(A.shape[-1], dtype=torch.float64, device=A.device)
        return eye + (2.0 * cost.double())[None, :, None, None] * A


def _top_eigen(K: torch.Tensor, k: int, power_iterations: int = 1) -> torch.Tensor:
    """V = U sqrt(Lambda) of the top-k eigenpairs of each K[g] (randomised subspace iteration), so that
    V V^T is K's best rank-k part: the preconditioner of the CG steps. One power iteration: at VOC07 size
    the CG steps then take 39 iterations in all against 38 with two, for two products with K fewer."""
    G, n, _ = K.shape
    p = min(n, k + 16)
    gen = torch.Generator(device=K.device).manual_seed(0)
    Q = torch.randn(G, n, p, generator=gen, device=K.device, dtype=K.dtype)
    for _ in range(power_iterations + 1):
        Q = torch.linalg.qr(_mm(K, Q)).Q
    lam, vec = torch.linalg.eigh((Q.mT @ _mm(K, Q)).double())
    lam, vec = lam.flip(-1)[..., :k].clamp(min=0), vec.flip(-1)[..., :k]
    return (Q.double() @ vec * lam.sqrt()[:, None]).to(K.dtype)


def _run_starts(runs: list[tuple[int, int]]) -> list[int]:
    """Where each run of rows starts once the runs are laid end to end."""
    return np.cumsum([0] + [hi - lo for lo, hi in runs]).tolist()[:-1]


def _mm_runs(K: torch.Tensor, runs: list[tuple[int, int]], x: torch.Tensor) -> torch.Tensor:
    """K[:, T] @ x for the columns T in `runs` (x's rows over them in that order), without gathering K[:, T]."""
    return sum(_mm(K[:, lo:hi], x[i:i + hi - lo]) for (lo, hi), i in zip(runs, _run_starts(runs)))


def _nystrom(K: torch.Tensor, runs: list[tuple[int, int]], V: torch.Tensor) -> torch.Tensor:
    """K's top eigenvectors (scaled: V V^T ~ K) from those of K_TT, T the rows in `runs` (V over them in
    that order): K ~ K[:, T] K_TT^-1 K[T, :] with K_TT ~ U Lambda U^T, so V_K = K[:, T] U Lambda^-1/2. One
    product with K[:, T] instead of an eigen decomposition of K (exact where K's rank is at most k)."""
    return _mm_runs(K, runs, V / (V * V).sum(0).clamp(min=1e-30))     # U Lambda^-1/2, as V = U Lambda^1/2


def _cg_step(K, y, omega, cost, active, which, beta0, tol, stats, V, M, max_iter: int = 500):
    """The Newton target on the active set by preconditioned CG on (S K_II S + I) z = S y_I,
    S = sqrt(2 C omega_I), beta = S z, warm-started from the current beta; all `which` problems of a
    group together. Preconditioner: P = I + S V V^T S with V V^T ~ K (rank k), inverted by Woodbury,
    P^-1 = I - S V M^-1 V^T S with M = I + V^T S^2 V (from `_Preconditioner.woodbury`): what is left has
    eigenvalues in [1, 1 + 2 C omega lambda_(k+1)(K)] instead of up to 1 + 2 C omega lambda_1(K)."""
    S = torch.where(active & which[:, None], (2.0 * cost * omega).sqrt(), 0)
    chol = torch.linalg.cholesky(M)                                               # (G, s, k, k)

    def precondition(r):
        t = _mm(V.mT, S * r).double().permute(0, 2, 1)[..., None]                  # (G, s, k, 1)
        t = torch.linalg.solve_triangular(chol, t, upper=False)
        t = torch.linalg.solve_triangular(chol.mT, t, upper=True)[..., 0].permute(0, 2, 1).to(r.dtype)
        return r - S * _mm(V, t)

    b = S * y
    z = torch.where(S > 0, beta0 / S.clamp(min=1e-30), 0)
    kz = _mm_cols(K, S * z, which)                 # K beta, carried along: the Newton step needs K target
    r = b - (S * kz + z)
    u = precondition(r)
    p = u.clone()
    ru = (r * u).sum(1)
    bnorm = (b * b).sum(1).sqrt()
    live = which & ((r * r).sum(1).sqrt() > tol * bnorm)
    for _ in range(max_iter):
        if not live.any():
            break
        stats.cg_iterations += 1
        ksp = _mm_cols(K, S * p, live)
        q = S * ksp + p
        alpha = torch.where(live, ru / (p * q).sum(1).clamp(min=1e-300), 0)
        z = z + alpha[:, None] * p
        kz = kz + alpha[:, None] * ksp
        r = r - alpha[:, None] * q
        u = precondition(r)
        ru_next = (r * u).sum(1)
        p = u + (ru_next / ru.clamp(min=1e-300))[:, None] * p
        ru = ru_next
        live &= (r * r).sum(1).sqrt() > tol * bnorm
    return S * z, kz, which & ~live


def _line_search(beta, f, d, delta, y, omega, cost, stats, iters: int = 60):
    """argmin_t>=0 of the objective along beta + t d (f + t delta = K(beta + t d)): the root of its
    piecewise-linear, increasing derivative, by Newton steps kept inside a bisection bracket. Most
    problems settle in a few steps; the ones still moving are packed together as the others drop out.
    (Sorting each problem's kinks and summing along them finds the root in one pass, but the sort costs
    more than these steps at VOC07 size.)"""
    G, n, s = y.shape

    def flat(x):  # (G, n, s) -> (G * s, n): one row per problem
        return x.permute(0, 2, 1).reshape(G * s, n)

    a1 = (beta * delta).sum(1).reshape(-1)          # w . dw
    a2 = (d * delta).sum(1).reshape(-1)             # |dw|^2
    slack0, dm = flat(1 - y * f), flat(y * delta)   # 1 - m, and m's change per unit t
    odm = flat(omega) * dm                          # zero on the rows a problem does not train on
    odm2 = odm * dm
    c2 = (2.0 * cost).expand(G, s).reshape(-1)
    lo = torch.zeros_like(a1)
    hi = torch.full_like(a1, math.inf)
    t = torch.ones_like(a1)
    out = t.clone()
    idx = torch.arange(G * s, device=t.device)      # the problems still in the arrays
    for _ in range(iters):
        stats.line_search_iterations += 1
        slack = torch.addcmul(slack0, t[:, None], dm, value=-1)
        g = a1 + t * a2 - c2 * torch.linalg.vecdot(odm, slack.clamp_(min=0))
        h = a2 + c2 * torch.where(slack > 0, odm2, 0).sum(1)
        lo = torch.where(g < 0, t, lo)
        hi = torch.where(g > 0, t, hi)
        step = t - g / h.clamp(min=1e-300)
        inside = (step > lo) & (step < hi)
        nxt = torch.where(inside, step, torch.where(torch.isinf(hi), 2 * t.clamp(min=1), (lo + hi) / 2))
        nxt = torch.where(g == 0, t, nxt)
        moved = (nxt - t).abs() > 1e-13 * t.abs().clamp(min=1)
        t = nxt
        out[idx] = t
        if not moved.any():
            break
        if 2 * int(moved.sum()) <= len(idx):
            keep = torch.nonzero(moved).flatten()
            idx, t, lo, hi, a1, a2, c2 = (v[keep] for v in (idx, t, lo, hi, a1, a2, c2))
            slack0, dm, odm, odm2 = slack0[keep], dm[keep], odm[keep], odm2[keep]
    return out.reshape(G, s)


# --------------------------------------------------------------------------------------- protocols

def svm_labels(labels: np.ndarray) -> np.ndarray:
    """VOC labels (1 present, -1 absent, 0 difficult) as SVM training targets: difficult is negative."""
    return np.where(labels == 1, 1, -1)


def _device(device) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def _tensor(x: np.ndarray, device, dtype) -> torch.Tensor:
    return normalize_rows(torch.as_tensor(np.asarray(x), device=device).to(dtype))


def _ranks(costs: list[float]) -> tuple[list[float], np.ndarray]:
    """Costs ascending (the solver's order) and, for each cost in the given order, its place there."""
    order = np.argsort(costs, kind="stable")
    return [float(costs[i]) for i in order], np.argsort(order, kind="stable")


@_thread_policy
def train_svm_voc07(train_x, train_y, test_x, test_y, costs=SEED_COSTS, folds: int = 3, device=None,
                    dtype=torch.float32, stats: SolverStats | None = None) -> dict:
    """The seed's VOC07 SVM protocol for one layer (train_svm_kfold + test_svm).

    Per class: an SVM per cost on 1 / -1 targets (difficult = -1), scored by the mean sklearn average
    precision over `folds` stratified folds (StratifiedKFold, no shuffle: cross_val_score(cv=3)); the
    cost with the best score (ties: the first in `costs` order) is refit on the whole train split;
    its test AP is the VOC all-points AP over the test images, difficult ones left out.
    Returns {"ap": (C,), "cost": [C], "mAP": float, "cv_ap": (C, len(costs))}; the test split is read
    only after every cost is chosen.
    """
    device = _device(device)
    stats = stats if stats is not None else SolverStats()
    ysvm = svm_labels(np.asarray(train_y))
    n, C = ysvm.shape
    asc, place = _ranks(list(costs))
    c = len(asc)
    fold_of = np.stack([stratified_folds(ysvm[:, k], folds) for k in range(C)], 1)          # (n, C)
    # The rows in blocks: block j holds the rows every class holds out in fold j, the last block the
    # others (the classes' stratified folds are nearly the same runs of rows, so it is small). Fold j's
    # problems train on the rows outside block j, at most two runs of rows: one group per fold over
    # them, whose products with its Gram matrix cost ((folds - 1) / folds)^2 of one with K.
    key = np.where((fold_of == fold_of[:, :1]).all(1), fold_of[:, 0], folds)
    perm = np.argsort(key, kind="stable")
    edge = np.searchsorted(key[perm], np.arange(folds + 1)).tolist()                        # block j: edge[j]:edge[j+1]
    ysvm, fold_of = ysvm[perm], torch.as_tensor(fold_of[perm], device=device)
    xtr = _tensor(np.asarray(train_x)[perm], device, dtype)
    K = gram(xtr)
    yt = torch.as_tensor(ysvm, device=device)
    runs = [[(lo, hi) for lo, hi in ((0, edge[j]), (edge[j + 1], n)) if hi > lo] for j in range(folds)]
    trained = [torch.cat([torch.arange(lo, hi, device=device) for lo, hi in r]) for r in runs]
    m = max(len(r) for r in trained)
    Kf = torch.empty(folds, m, m, dtype=dtype, device=device)
    yf = torch.ones(folds, m, C, dtype=yt.dtype, device=device)
    trainf = torch.zeros(folds, m, C, dtype=torch.bool, device=device)
    for j, (r, idx) in enumerate(zip(runs, trained)):
        Kf[j, len(idx):], Kf[j, :, len(idx):] = 0, 0                                        # the padding rows
        for (lo, hi), i in zip(r, _run_starts(r)):
            for (lo2, hi2), i2 in zip(r, _run_starts(r)):
                Kf[j, i:i + hi - lo, i2:i2 + hi2 - lo2] = K[lo:hi, lo2:hi2]
        yf[j, :len(idx)] = yt[idx]
        trainf[j, :len(idx)] = fold_of[idx] != j
    grid = torch.tensor(asc, dtype=dtype, device=device)[None].expand(C, -1)
    Vf = _top_eigen(Kf, min(PRECONDITIONER_RANK, m))                                       # the CG preconditioner
    beta_f, f_f = solve_svms(Kf, yf, trainf, grid, V=Vf, stats=stats)                     # (folds, m, C, c)
    del Kf
    V = _nystrom(K, runs[0], Vf[0, :len(trained[0])])                                      # the refit's, from fold 0's
    # each fold's fits back on all n rows, with their decision values on the block they held out
    beta = torch.zeros(n, C, folds, c, dtype=dtype, device=device)
    f = torch.empty_like(beta)
    for j, (r, idx) in enumerate(zip(runs, trained)):
        beta[idx, :, j] = beta_f[j, :len(idx)]
        f[idx, :, j] = f_f[j, :len(idx)]
        block = K[edge[j]:edge[j + 1]]
        f[edge[j]:edge[j + 1], :, j] = _mm_runs(block, r, beta_f[j, :len(idx)].flatten(1)).view(-1, C, c)
    # each fold's held-out rows, in data order (ties keep it), padded to the largest fold
    held = (fold_of[..., None] == torch.arange(folds, device=device)).flatten(1)            # (n, C*folds)
    y = yt.repeat_interleave(folds, 1)
    f = f.flatten(1, 2)
    m = int(held.sum(0).max())
    rows = torch.argsort((~held).to(torch.int8), dim=0, stable=True)[:m]                  # (m, C*folds)
    valid = torch.gather(held, 0, rows)
    scores = torch.gather(f, 0, rows[..., None].expand(-1, -1, c)).permute(1, 2, 0).reshape(-1, m)
    pos = torch.gather(y > 0, 0, rows).T[:, None].expand(-1, c, -1).reshape(-1, m)
    valid = valid.T[:, None].expand(-1, c, -1).reshape(-1, m)
    ap = _ap_rows(scores, pos, valid, voc=False).reshape(C, folds, c).mean(1)
    cv_ap = ap.cpu().numpy()[:, place]                                                     # given order
    chosen = cv_ap.argmax(1)
    refit = torch.tensor([[costs[i]] for i in chosen], dtype=dtype, device=device)
    # the refit starts from the fold solutions at that cost: beta_i depends on row i's margin alone, so
    # the mean of the (folds - 1) fits that trained on row i, times (folds - 1) / folds as every row now
    # adds to the margins: 2 Newton steps at VOC07 size instead of 3 to 7 from the ridge solution
    at = torch.as_tensor(place[chosen], device=device)
    fold_beta = beta[:, torch.arange(C, device=device), :, at]                              # (C, n, folds)
    start = (fold_beta.sum(2).T / folds)[None, :, :, None] if folds > 1 else None
    beta, _ = solve_svms(K[None], yt[None],
                         torch.ones(1, n, C, dtype=torch.bool, device=device), refit, start=start,
                         V=V[None], stats=stats)
    beta = beta[0, :, :, 0]                                                                 # (n, C)
    del K
    xte = _tensor(test_x, device, dtype)
    test_scores = _mm(xte, _mm(xtr.T, beta)) + beta.sum(0)                                        # (m, C)
    test_labels = torch.as_tensor(np.asarray(test_y), device=device).T
    test_ap = _ap_rows(test_scores.T, test_labels == 1, test_labels != 0, voc=True).cpu().numpy()
    return {"ap": test_ap, "cost": [float(costs[i]) for i in chosen], "mAP": float(test_ap.mean()),
            "cv_ap": cv_ap}


def sample_low_shot(labels: np.ndarray, k: int, sample: int, seed: int = 0) -> list[np.ndarray]:
    """The training rows of each class for one low-shot sample: k images where the class is present
    and (C - 1) * k where it is absent (never a difficult one), drawn without replacement, each class,
    k and sample from its own seeded stream; rows in data order."""
    labels = np.asarray(labels)
    C = labels.shape[1]
    out = []
    for c in range(C):
        rng = np.random.default_rng([seed, sample, k, c])
        pos = rng.choice(np.flatnonzero(labels[:, c] == 1), k, replace=False)
        neg = rng.choice(np.flatnonzero(labels[:, c] == -1), (C - 1) * k, replace=False)
        out.append(np.sort(np.concatenate([pos, neg])))
    return out


@_thread_policy
def low_shot_svm_voc07(train_x, train_y, test_x, test_y, ks=LOW_SHOT_KS, samples: int = 5, costs=SEED_COSTS,
                       seed: int = 0, folds: int = 3, device=None, dtype=torch.float32,
                       stats: SolverStats | None = None, group_budget: int = 2 ** 26) -> dict:
    """The seed's low-shot SVM protocol for one layer (train_svm_low_shot + test_svm_low_shot +
    aggregate_low_shot_svm_stats), and beside it a cost chosen without the test split.

    For each k and sample, every class trains an SVM per cost on its sampled rows. "best_cost" is the
    seed's figure: the cost with the best test mAP averaged over the samples (ties: the first in `costs`
    order), with the mean and (population) std over samples at that cost. "cv_cost" chooses the cost per
    class and sample by the mean AP over min(folds, k) stratified folds of the sample itself, then
    reports the test mAP mean and std over samples; with k = 1 no fold can hold out a positive, every
    cost ties and the first one is taken (as the seed's tie rule would).
    Returns {k: {"best_cost": {"mean", "std", "cost"}, "cv_cost": {"mean", "std"}, "map": test mAP
    (samples, costs), "cv_choice": the CV-chosen cost (samples, C)}}.
    """
    device = _device(device)
    stats = stats if stats is not None else SolverStats()
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    C = train_y.shape[1]
    asc, place = _ranks(list(costs))
    nc = len(asc)
    xtr = _tensor(train_x, device, dtype)
    xte = _tensor(test_x, device, dtype)
    K = gram(xtr)                                                                          # (N, N)
    N = len(K)
    test_labels = torch.as_tensor(test_y, device=device).T                                 # (C, m)
    out = {}
    for k in ks:
        nf = min(folds, k) if k > 1 else 0
        groups = [(c, s) for s in range(samples) for c in range(C)]
        rows = {s: sample_low_shot(train_y, k, s, seed) for s in range(samples)}
        test_ap = torch.zeros(samples, C, nc, dtype=torch.float64)
        cv_ap = torch.zeros(samples, C, nc, dtype=torch.float64)
        n = C * k
        chunk = max(1, group_budget // (n * n))
        for start in range(0, len(groups), chunk):
            part = groups[start:start + chunk]
            R = torch.as_tensor(np.stack([rows[s][c] for c, s in part]), device=device)     # (g, n)
            cls = torch.as_tensor([c for c, _ in part], device=device)
            Kg = torch.stack([K.index_select(0, r).index_select(1, r) for r in R])
            lab = torch.as_tensor(train_y, device=device)[R, cls[:, None]]                  # (g, n)
            yg = torch.where(lab == 1, 1, -1)
            train = [torch.ones_like(yg, dtype=torch.bool)]
            for j in range(nf):  # stratified folds of the sample itself
                fo = np.stack([stratified_folds(t, nf) for t in yg.cpu().numpy()])
                train.append(torch.as_tensor(fo != j, device=device))
            train = torch.stack(train, 2)                                                   # (g, n, 1+nf)
            grid = torch.tensor(asc, dtype=dtype, device=device)[None].expand(1 + nf, -1)
            beta, f = solve_svms(Kg, yg[..., None].expand(-1, -1, 1 + nf), train, grid, stats=stats)
            # test scores through the primal weights: w~ = sum_i beta_i x~_i over each sample's rows
            B = torch.zeros(N, len(part), nc, dtype=dtype, device=device)
            B[R, torch.arange(len(part), device=device)[:, None]] = beta[:, :, 0]
            B = B.reshape(N, -1)
            ts = (_mm(xte, _mm(xtr.T, B)) + B.sum(0)).T.reshape(len(part), nc, -1)          # (g, c, m)
            tl = test_labels[cls][:, None].expand(-1, nc, -1)
            ap = _ap_rows(ts.reshape(-1, ts.shape[-1]), (tl == 1).reshape(-1, tl.shape[-1]),
                          (tl != 0).reshape(-1, tl.shape[-1]), voc=True).reshape(len(part), nc).cpu()
            if nf:
                hs = f[:, :, 1:].permute(0, 2, 3, 1).reshape(-1, n)                         # (g*nf*c, n)
                pos = (yg > 0)[:, None, None].expand(-1, nf, nc, -1).reshape(-1, n)
                held = (~train[:, :, 1:]).permute(0, 2, 1)[:, :, None].expand(-1, -1, nc, -1).reshape(-1, n)
                cvp = _ap_rows(hs, pos, held, voc=False).reshape(len(part), nf, nc).mean(1).cpu()
            for i, (c, s) in enumerate(part):
                test_ap[s, c] = ap[i]
                if nf:
                    cv_ap[s, c] = cvp[i]
        test_ap, cv_ap = test_ap.numpy()[..., place], cv_ap.numpy()[..., place]             # given order
        sample_map = test_ap.mean(1)                                                        # (samples, costs)
        best = int(sample_map.mean(0).argmax())
        chosen = cv_ap.argmax(2)                                                            # (samples, C)
        cv_map = np.take_along_axis(test_ap, chosen[..., None], 2)[..., 0].mean(1)          # (samples,)
        out[k] = {"best_cost": {"mean": float(sample_map[:, best].mean()), "std": float(sample_map[:, best].std()),
                                "cost": float(costs[best])},
                  "cv_cost": {"mean": float(cv_map.mean()), "std": float(cv_map.std())},
                  "map": sample_map, "cv_choice": np.asarray(costs, dtype=float)[chosen]}
    return out
