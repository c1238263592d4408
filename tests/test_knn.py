"""The kNN protocol (cosine similarity, exp(sim / T)-weighted vote) against a plain numpy reading of
it, and the features it runs on."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ssl_lib.benchmarks.features import RAW_PIXELS_MAX_SIDE, eval_dataset, extract_features, raw_pixels
from ssl_lib.benchmarks.knn import knn_classify


def _reference(train, train_y, test, test_y, k, t, num_classes):
    """Every test image against every train image, by the book."""
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    test = test / np.linalg.norm(test, axis=1, keepdims=True)
    top1 = top5 = 0
    for x, y in zip(test, test_y):
        sims = train @ x
        nearest = np.argsort(-sims, kind="stable")[:k]
        votes = np.zeros(num_classes)
        for j in nearest:
            votes[train_y[j]] += np.exp(sims[j] / t)
        ranked = np.argsort(-votes, kind="stable")
        top1 += ranked[0] == y
        top5 += y in ranked[:5]
    return top1 / len(test), top5 / len(test)


def test_weighted_vote_matches_the_brute_force_reading_of_the_protocol():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(7, 16))
    train_y, test_y = rng.integers(0, 7, 300), rng.integers(0, 7, 80)
    train = centers[train_y] + rng.normal(scale=1.5, size=(300, 16))
    test = centers[test_y] + rng.normal(scale=1.5, size=(80, 16))
    got = knn_classify(train, train_y, test, test_y, ks=(1, 10, 50), temperature=0.07, num_classes=7)
    for k in (1, 10, 50):
        top1, top5 = _reference(train, train_y, test, test_y, k, 0.07, 7)
        assert got["top1"][k] == pytest.approx(top1) and got["top5"][k] == pytest.approx(top5)
    assert 0.3 < got["top1"][10] < 1.0  # clustered data: far above chance (1/7), not trivially perfect


def test_close_neighbours_outvote_many_far_ones_at_low_temperature():
    train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 1.0], [0.2, 1.0]])
    train_y = np.array([0, 0, 1, 1, 1])
    test, test_y = np.array([[1.0, 0.05]]), np.array([0])
    assert knn_classify(train, train_y, test, test_y, ks=(5,), temperature=0.07)["top1"][5] == 1.0
    # with a flat weighting the three class-1 neighbours win
    assert knn_classify(train, train_y, test, test_y, ks=(5,), temperature=1e6)["top1"][5] == 0.0


def test_raw_pixels_keep_small_images_and_shrink_large_ones():
    small = torch.rand(2, 3, 28, 28)
    assert torch.equal(raw_pixels(small), small.flatten(1))
    large = torch.rand(2, 3, 224, 112)
    assert raw_pixels(large).shape == (2, 3 * RAW_PIXELS_MAX_SIDE * RAW_PIXELS_MAX_SIDE // 2)


def test_features_are_the_same_with_and_without_loader_workers(fmnist_tiny):
    from ssl_lib.benchmarks.features import build_backbone

    ds = eval_dataset(fmnist_tiny, "test", None)
    model = build_backbone(dict(type="ResNet", depth=18, base_channels=8, stem="cifar"), None, seed=0)
    inline, labels = extract_features(model, ds, batch_size=16, num_workers=0)
    parallel, labels2 = extract_features(model, ds, batch_size=16, num_workers=2)
    assert np.array_equal(labels, labels2) and inline["avgpool"].shape == (len(ds), 64)
    np.testing.assert_allclose(inline["avgpool"], parallel["avgpool"], rtol=0, atol=1e-6)
