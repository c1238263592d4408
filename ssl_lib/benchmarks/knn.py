"""Weighted k-nearest-neighbour classification on frozen features (the seed's kNN protocol:
cosine similarity, top-k neighbours vote with weight exp(sim / T), T = 0.07), searched with faiss."""
from __future__ import annotations

import faiss
import numpy as np


def l2_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def knn_classify(train_feats: np.ndarray, train_labels: np.ndarray, test_feats: np.ndarray,
                 test_labels: np.ndarray, ks=(10, 20, 100, 200), temperature: float = 0.07,
                 num_classes: int | None = None) -> dict[str, dict[int, float]]:
    """Top-1 and top-5 accuracy (in [0, 1]) for each k."""
    num_classes = num_classes or int(max(train_labels.max(), test_labels.max()) + 1)
    train = np.ascontiguousarray(l2_normalize(train_feats.astype(np.float32)))
    test = np.ascontiguousarray(l2_normalize(test_feats.astype(np.float32)))
    index = faiss.IndexFlatIP(train.shape[1])
    if hasattr(faiss, "index_cpu_to_all_gpus") and faiss.get_num_gpus() > 0:  # faiss-gpu (the bench image)
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(train)
    kmax = min(max(ks), len(train))
    sims, idx = index.search(test, kmax)
    neighbour_labels = train_labels[idx]
    result: dict[str, dict[int, float]] = {"top1": {}, "top5": {}}
    for k in ks:
        kk = min(k, kmax)
        weights = np.exp(sims[:, :kk] / temperature)
        votes = np.zeros((len(test), num_classes), dtype=np.float64)
        np.add.at(votes, (np.arange(len(test))[:, None], neighbour_labels[:, :kk]), weights)
        ranked = np.argsort(-votes, axis=1, kind="stable")
        result["top1"][k] = float((ranked[:, 0] == test_labels).mean())
        top5 = min(5, num_classes)
        result["top5"][k] = float((ranked[:, :top5] == test_labels[:, None]).any(axis=1).mean())
    return result
