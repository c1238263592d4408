"""Clustering for DeepCluster and ODC, as the seed's `utils/clustering.py` (after facebookresearch's
deepcluster): PCA-whitening and L2 normalisation of the features, then faiss k-means. Every random
choice takes a seed, so the same features give the same clusters."""
from __future__ import annotations

import faiss
import numpy as np

from ..errors import ConfigError


def preprocess_features(features: np.ndarray, pca_dim: int = 256) -> np.ndarray:
    """PCA-reduce to `pca_dim` dims with whitening (eigenvalues to the power -0.5; -1 skips the PCA),
    then scale every row to unit length."""
    x = np.ascontiguousarray(features, dtype=np.float32)
    if np.isnan(x).any():
        raise FloatingPointError("the features to cluster hold NaN: training has diverged")
    if pca_dim != -1:
        if not 0 < pca_dim <= x.shape[1]:
            raise ConfigError(f"clustering.pca_dim={pca_dim} must be -1 (no PCA) or in 1..{x.shape[1]}, "
                              f"the width of the features")
        pca = faiss.PCAMatrix(x.shape[1], pca_dim, -0.5)
        pca.train(x)
        x = pca.apply(x)
        nan = np.isnan(x)
        if nan.mean() > 1e-3:  # the seed tolerates up to 0.1% (directions of ~zero variance)
            raise FloatingPointError(f"{100 * nan.mean():.2f}% of the PCA-whitened features are NaN")
        x[nan] = 0.0
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-10)


def kmeans(x: np.ndarray, k: int, seed: int, niter: int = 20) -> tuple[np.ndarray, float]:
    """faiss k-means of the rows of `x` (every point is used, none subsampled): the label of each row
    (its nearest centroid) and the final k-means objective."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not 0 < k <= len(x):
        raise ConfigError(f"k-means with k={k} needs between 1 and {len(x)} clusters ({len(x)} points)")
    km = faiss.Kmeans(x.shape[1], k, niter=niter, seed=seed, max_points_per_centroid=10_000_000,
                      min_points_per_centroid=1)
    km.train(x)
    _, labels = km.index.search(x, 1)
    return labels[:, 0].astype(np.int64), float(km.obj[-1])


class Kmeans:
    """The seed's `clustering=dict(type='Kmeans', k=..., pca_dim=...)`: `cluster(features, seed)`
    sets and returns `labels`, one cluster index per row."""

    def __init__(self, k: int, pca_dim: int = 256):
        self.k, self.pca_dim = int(k), int(pca_dim)
        self.labels: np.ndarray | None = None
        self.loss = float("nan")

    def cluster(self, features: np.ndarray, seed: int = 0) -> np.ndarray:
        self.labels, self.loss = kmeans(preprocess_features(features, self.pca_dim), self.k, seed)
        return self.labels


CLUSTERINGS = {"Kmeans": Kmeans}


def build_clustering(cfg: dict) -> Kmeans:
    cfg = dict(cfg)
    name = cfg.pop("type", None)
    if name not in CLUSTERINGS:
        raise ConfigError(f"clustering type {name!r} is not one of {', '.join(CLUSTERINGS)}")
    try:
        return CLUSTERINGS[name](**cfg)
    except TypeError as err:
        raise ConfigError(f"clustering {cfg}: {err}") from err


def cluster_weights(labels: np.ndarray, num_classes: int, power: float = 0.5) -> np.ndarray:
    """The seed's loss re-weighting: (1 / cluster size) ** power per class, normalised to sum 1."""
    sizes = np.bincount(np.asarray(labels), minlength=num_classes).astype(np.float32)
    inv = (1.0 / (sizes + 1e-10)) ** power
    return inv / inv.sum()
