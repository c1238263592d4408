"""The fast linear protocol: many softmax-regression heads trained at once on cached features, the
setting chosen on a held-out part of the train split."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ssl_lib.benchmarks.fast_linear import channel_stats, stratified_holdout, sweep_layer, train_heads
from ssl_lib.benchmarks.features import write_feature_set
from ssl_lib.errors import ConfigError, DataError
from ssl_lib.stages.fast_linear import fast_linear

CLASSES = ["a", "b", "c"]


def _blobs(n, dim, classes=3, spread=1.0, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(100).normal(scale=3.0, size=(classes, dim))
    y = np.arange(n) % classes
    return (centers[y] + rng.normal(scale=spread, size=(n, dim))).astype(np.float32), y.astype(np.int64)


def _feature_set(root: Path, layers: dict[str, int], n_train=120, n_test=60, spread=1.0, labels=None) -> str:
    """A features artifact of Gaussian blobs: `layers` maps a layer name to its pool side (dims = 4 x side^2)."""
    feats = {"train": {"pretrained": {}}, "test": {"pretrained": {}}}
    ys = {}
    for k, (layer, side) in enumerate(layers.items()):
        for split, n, seed in (("train", n_train, k), ("test", n_test, 50 + k)):
            feats[split]["pretrained"][layer], ys[split] = _blobs(n, 4 * side * side, spread=spread, seed=seed)
    ys = labels or ys
    root.mkdir(parents=True, exist_ok=True)
    write_feature_set(root, feats, ys, {"classes": CLASSES, "pool_sizes": dict(layers), "algorithm": "test"})
    return str(root)


def test_settings_trained_together_follow_the_path_each_follows_alone():
    x, y = _blobs(150, 10, spread=3.0)
    x = torch.from_numpy(x)
    y = torch.from_numpy(y)
    lrs, wds = [0.01, 0.3, 1.0, 0.3], [0.0, 1e-3, 1e-4, 0.1]
    w, b = train_heads(x, y, 3, lrs, wds, epochs=3, batch_size=32, seed=7)
    assert w.shape == (4, 10, 3) and b.shape == (4, 3)
    for s, (lr, wd) in enumerate(zip(lrs, wds)):
        w1, b1 = train_heads(x, y, 3, [lr], [wd], epochs=3, batch_size=32, seed=7)
        torch.testing.assert_close(w[s], w1[0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(b[s], b1[0], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(w[1], w[3])  # the settings do differ


def test_one_setting_is_torch_sgd_with_momentum_on_a_linear_layer():
    x, y = _blobs(100, 6, spread=2.0)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    lr, wd, epochs, batch = 0.2, 1e-2, 3, 16
    w, b = train_heads(x, y, 3, [lr], [wd], epochs=epochs, batch_size=batch, seed=3)

    layer = torch.nn.Linear(6, 3)
    torch.nn.init.zeros_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    opt = torch.optim.SGD(layer.parameters(), lr=lr, momentum=0.9, weight_decay=wd)
    gen = torch.Generator().manual_seed(3)
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(layer(x[idx]), y[idx]).backward()
            opt.step()
    torch.testing.assert_close(w[0], layer.weight.detach().T, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(b[0], layer.bias.detach(), rtol=1e-4, atol=1e-6)


def test_standardisation_is_batchnorm_without_affine_per_channel():
    maps = torch.randn(20, 5, 3, 3) * torch.arange(1, 6).view(1, 5, 1, 1) + 2.0
    mean, inv_std = channel_stats(maps.flatten(1), side=3)
    bn = torch.nn.BatchNorm2d(5, affine=False).train()
    torch.testing.assert_close((maps.flatten(1) - mean) * inv_std, bn(maps).flatten(1), rtol=1e-4, atol=1e-5)


def test_held_out_part_is_class_stratified_and_deterministic():
    labels = np.repeat(np.arange(4), [50, 30, 20, 1])
    fit, held = stratified_holdout(labels, 0.1, seed=0)
    assert np.array_equal(np.sort(np.concatenate([fit, held])), np.arange(len(labels)))
    assert [int((labels[held] == c).sum()) for c in range(4)] == [5, 3, 2, 0]
    again = stratified_holdout(labels, 0.1, seed=0)
    assert np.array_equal(held, again[1]) and not np.array_equal(held, stratified_holdout(labels, 0.1, seed=1)[1])


def test_the_choice_never_reads_the_test_split():
    train_x, train_y = _blobs(600, 16, spread=8.0)
    test_x, test_y = _blobs(80, 16, spread=8.0, seed=9)
    args = dict(side=2, num_classes=3, lrs=(0.01, 0.1, 1.0), weight_decays=(0.0, 0.3), epochs=3, batch_size=64)
    clean = sweep_layer(train_x, train_y, test_x, test_y, **args)
    poisoned = sweep_layer(train_x, train_y, np.full_like(test_x, np.nan), (test_y + 1) % 3, **args)
    pick = lambda rows: max(rows, key=lambda r: r["val_top1"])  # noqa: E731
    assert [r["val_top1"] for r in clean] == [r["val_top1"] for r in poisoned]
    assert {k: pick(clean)[k] for k in ("lr", "weight_decay")} == {k: pick(poisoned)[k] for k in ("lr", "weight_decay")}
    assert len({r["val_top1"] for r in clean}) > 1  # the sweep does tell settings apart


def test_stage_reaches_100_percent_on_separable_data_and_reports_the_sweep(tmp_path):
    features = _feature_set(tmp_path / "features", {"feat5": 2, "avgpool": 1}, spread=0.3)
    metrics = fast_linear(features, str(tmp_path / "out"), lrs=[0.01, 0.1], weight_decays=[0.0, 1e-4], epochs=3)
    assert metrics["chosen"]["test_top1"] == 1.0 and metrics["chosen"]["test_top5"] == 1.0
    assert all(row["test_top1"] == 1.0 for row in metrics["per_layer"].values())
    assert len(metrics["sweep"]) == 2 * 2 * 2
    assert {(r["layer"], r["lr"], r["weight_decay"]) for r in metrics["sweep"]} == {
        (layer, lr, wd) for layer in ("feat5", "avgpool") for lr in (0.01, 0.1) for wd in (0.0, 1e-4)}
    assert metrics["chosen"]["layer"] == metrics["best_layer"] in ("feat5", "avgpool")
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["chosen"] == metrics["chosen"]


def test_stage_choice_is_the_same_whatever_the_test_labels(tmp_path):
    features = _feature_set(tmp_path / "f1", {"avgpool": 1}, spread=4.0)
    shuffled = np.load(Path(features) / "test.labels.npy")[::-1].copy()
    np.save(Path(features).parent / "shuffled.npy", shuffled)
    a = fast_linear(features, str(tmp_path / "a"), lrs=[0.01, 1.0], weight_decays=[0.0, 0.1], epochs=2)
    np.save(Path(features) / "test.labels.npy", shuffled)
    b = fast_linear(features, str(tmp_path / "b"), lrs=[0.01, 1.0], weight_decays=[0.0, 0.1], epochs=2)
    keys = ("layer", "lr", "weight_decay", "val_top1")
    assert {k: a["chosen"][k] for k in keys} == {k: b["chosen"][k] for k in keys}


@pytest.fixture
def no_training(monkeypatch):
    import ssl_lib.stages.fast_linear as stage

    monkeypatch.setattr(stage, "sweep_layer", lambda *a, **k: pytest.fail("training started on bad input"))


def test_features_of_the_wrong_width_are_refused_naming_the_file(tmp_path, no_training):
    features = _feature_set(tmp_path / "features", {"feat5": 2, "avgpool": 1})
    np.save(Path(features) / "test.pretrained.feat5.npy", np.zeros((60, 12), np.float32))
    with pytest.raises(DataError, match=r"test\.pretrained\.feat5\.npy: shape \(60, 12\), but features.json gives "
                                        r"feat5 16 dims"):
        fast_linear(features, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_multi_label_features_are_refused(tmp_path, no_training):
    labels = np.where(np.random.default_rng(0).random((120, 3)) < 0.3, 1, -1).astype(np.int8)
    tlabels = np.where(np.random.default_rng(1).random((60, 3)) < 0.3, 1, -1).astype(np.int8)
    features = _feature_set(tmp_path / "features", {"avgpool": 1}, labels={"train": labels, "test": tlabels})
    with pytest.raises(ConfigError, match="multi-label"):
        fast_linear(features, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_an_empty_split_is_refused(tmp_path, no_training):
    features = _feature_set(tmp_path / "features", {"avgpool": 1}, n_test=0)
    with pytest.raises(DataError, match="split 'test' is empty"):
        fast_linear(features, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_nan_features_and_bad_settings_are_refused(tmp_path, no_training):
    features = _feature_set(tmp_path / "features", {"avgpool": 1})
    with pytest.raises(ConfigError, match="lrs must be positive"):
        fast_linear(features, str(tmp_path / "out"), lrs=[0.1, -1.0])
    with pytest.raises(ConfigError, match="layers \\['feat9'\\] are not in"):
        fast_linear(features, str(tmp_path / "out"), layers=["feat9"])
    x = np.load(Path(features) / "train.pretrained.avgpool.npy")
    x[3, 1] = np.nan
    np.save(Path(features) / "train.pretrained.avgpool.npy", x)
    with pytest.raises(DataError, match=r"train\.pretrained\.avgpool\.npy: holds NaN"):
        fast_linear(features, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
