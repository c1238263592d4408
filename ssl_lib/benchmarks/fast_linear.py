"""Fast linear evaluation (ours, not the seed's): linear heads on the cached features of the
features artifact, every layer x a sweep of learning rates x weight decays trained at once.

Per layer the features are standardised with BatchNorm-without-affine statistics (per channel of
the pooled map, as the seed's MultiClsHead normalises them) taken from the fitting part of the train
split; then one tensor of weights [settings, D, C] holds a softmax-regression head per setting, all
trained by the same minibatch SGD (momentum 0.9, weight decay on weights and bias as torch's SGD
applies it, cosine learning rate per epoch, zero init) over the same minibatch order: each setting
follows exactly the path it would follow alone. The setting is chosen on a held-out part of the
train split (deterministic, class-stratified); the test split is only scored, after the choice.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

DEFAULT_LRS = (0.01, 0.03, 0.1, 0.3, 1.0)
DEFAULT_WEIGHT_DECAYS = (0.0, 1e-5, 1e-4, 1e-3)
BN_EPS = 1e-5  # BatchNorm's


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(fit indices, held-out indices) of `labels`: from each class with at least 2 samples,
    round(fraction x its count) of them (at least 1, never all), drawn by a seeded permutation."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = min(max(1, round(fraction * len(idx))), len(idx) - 1)
        held.append(rng.permutation(idx)[:k])
    held = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    return np.setdiff1d(np.arange(len(labels)), held), held


def channel_stats(x: torch.Tensor, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and 1 / sqrt(var + eps) per dimension of flattened C x side x side pooled maps, each
    channel's statistics over its side x side positions and all rows (BatchNorm2d's, biased var)."""
    n, d = x.shape
    cells = side * side
    per_channel = x.reshape(n, d // cells, cells).double()
    mean = per_channel.mean(dim=(0, 2))
    var = per_channel.var(dim=(0, 2), unbiased=False)
    return (mean.repeat_interleave(cells).float(), torch.rsqrt(var + BN_EPS).repeat_interleave(cells).float())


def train_heads(x: torch.Tensor, y: torch.Tensor, num_classes: int, lrs: Sequence[float],
                weight_decays: Sequence[float], epochs: int, batch_size: int, momentum: float = 0.9,
                seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax-regression heads for settings (lrs[s], weight_decays[s]), trained together on (x, y):
    returns weights [S, D, C] and biases [S, C]. Minibatch SGD with momentum as torch.optim.SGD does
    it on the mean cross-entropy, lr x (1 + cos(pi x epoch / epochs)) / 2; the minibatch order
    depends on `seed` only, so a setting trained alone follows the same path."""
    if len(lrs) != len(weight_decays):
        raise ValueError(f"{len(lrs)} learning rates for {len(weight_decays)} weight decays")
    n, d = x.shape
    s, c = len(lrs), num_classes
    # column s * C + c of the weights is setting s, class c; every step is a few fused passes over them
    lr_cols = torch.tensor(lrs, dtype=x.dtype, device=x.device).repeat_interleave(c)
    wd_cols = torch.tensor(weight_decays, dtype=x.dtype, device=x.device).repeat_interleave(c)
    w = torch.zeros(d, s * c, dtype=x.dtype, device=x.device)
    b = torch.zeros(s * c, dtype=x.dtype, device=x.device)
    buf_w, buf_b = torch.zeros_like(w), torch.zeros_like(b)
    onehot = torch.nn.functional.one_hot(y, c).to(x.dtype)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        scale = 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        order = torch.randperm(n, generator=gen).to(x.device)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            xb = x[idx]
            probs = torch.softmax(torch.addmm(b, xb, w).view(-1, s, c), dim=2)
            grad = probs.sub_(onehot[idx].unsqueeze(1)).view(-1, s * c)  # dCE/dlogits x batch: p - onehot
            # torch.optim.SGD: buf = momentum x buf + (mean gradient + wd x param); param -= lr x buf
            buf_w.addmm_(xb.T, grad, beta=momentum, alpha=1.0 / len(idx)).addcmul_(w, wd_cols)
            buf_b.mul_(momentum).add_(grad.sum(0), alpha=1.0 / len(idx)).addcmul_(b, wd_cols)
            w.addcmul_(buf_w, lr_cols, value=-scale)
            b.addcmul_(buf_b, lr_cols, value=-scale)
    return w.view(d, s, c).permute(1, 0, 2).contiguous(), b.view(s, c)


@torch.no_grad()
def score(weights: torch.Tensor, biases: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
          chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 and top-5 accuracy of every head (weights [S, D, C]) on (x, y): two arrays of S fractions."""
    s, d, c = weights.shape
    flat = weights.permute(1, 0, 2).reshape(d, s * c)
    k = min(5, c)
    top1 = torch.zeros(s, dtype=torch.float64, device=x.device)
    top5 = torch.zeros_like(top1)
    for start in range(0, len(x), chunk):
        logits = (x[start:start + chunk] @ flat).view(-1, s, c) + biases
        top = logits.topk(k, dim=2).indices
        hit = top == y[start:start + chunk, None, None]
        top1 += hit[:, :, 0].sum(0)
        top5 += hit.any(dim=2).sum(0)
    return (top1 / len(x)).cpu().numpy(), (top5 / len(x)).cpu().numpy()


def sweep_layer(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, side: int,
                num_classes: int, lrs: Sequence[float] = DEFAULT_LRS,
                weight_decays: Sequence[float] = DEFAULT_WEIGHT_DECAYS, epochs: int = 10, batch_size: int = 256,
                val_fraction: float = 0.1, seed: int = 0, device: str | None = None) -> list[dict]:
    """Every (lr, weight decay) of the grid on one layer: trained on the fitting part of the train
    split, scored on its held-out part and then on test. One dict per setting, grid order (lr-major)."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    grid = [(float(lr), float(wd)) for lr in lrs for wd in weight_decays]
    fit_idx, val_idx = stratified_holdout(train_y, val_fraction, seed)
    x = torch.from_numpy(np.ascontiguousarray(train_x, dtype=np.float32)).to(device)
    y = torch.from_numpy(np.asarray(train_y, dtype=np.int64)).to(device)
    fit, val = torch.from_numpy(fit_idx).to(device), torch.from_numpy(val_idx).to(device)
    mean, inv_std = channel_stats(x[fit], side)
    x = (x - mean) * inv_std
    weights, biases = train_heads(x[fit], y[fit], num_classes, [g[0] for g in grid], [g[1] for g in grid],
                                  epochs, batch_size, seed=seed)
    val_top1, _ = score(weights, biases, x[val], y[val])
    del x
    tx = (torch.from_numpy(np.ascontiguousarray(test_x, dtype=np.float32)).to(device) - mean) * inv_std
    ty = torch.from_numpy(np.asarray(test_y, dtype=np.int64)).to(device)
    test_top1, test_top5 = score(weights, biases, tx, ty)
    return [{"lr": lr, "weight_decay": wd, "val_top1": float(v), "test_top1": float(t1), "test_top5": float(t5)}
            for (lr, wd), v, t1, t5 in zip(grid, val_top1, test_top1, test_top5)]


def choose(rows: list[dict]) -> dict:
    """The row with the best held-out top-1; ties go to the first (the smaller lr, then weight decay)."""
    return max(rows, key=lambda r: r["val_top1"])
