"""The features stage and artifact: the seed's pooled layer sizes, one pass read by every protocol,
kNN from the cache, and the benchmark switches."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ssl_lib.benchmarks.features import (LAYERS, FeatureSet, eval_dataset, extract_features, load_backbone,
                                         load_feature_set, pool_layer, write_feature_set)
from ssl_lib.benchmarks.knn import knn_classify
from ssl_lib.errors import ConfigError, DataError
from ssl_lib.stages.features import features
from ssl_lib.stages.knn import knn
from ssl_lib.stages.plan import PROTOCOLS, plan


def test_resnet50_shaped_maps_pool_to_the_seeds_svm_dims():
    maps = tuple(torch.zeros(2, c, s, s) for c, s in ((64, 112), (256, 56), (512, 28), (1024, 14), (2048, 7)))
    dims = {name: pool_layer(maps, name).shape[1] for name in LAYERS}
    assert dims == {"feat1": 9216, "feat2": 9216, "feat3": 8192, "feat4": 9216, "feat5": 8192, "avgpool": 2048}


def test_pooling_is_the_mean_of_each_cell():
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    maps = (x,) * 5
    pooled = pool_layer(maps, "feat5").reshape(2, 2, 2)  # 4x4 -> 2x2 cells of 2x2
    assert pooled[0, 0, 0] == x[0, 0, :2, :2].mean() and pooled[1, 1, 1] == x[0, 1, 2:, 2:].mean()
    assert torch.equal(pool_layer(maps, "avgpool"), x.mean(dim=(2, 3)))


def test_a_feature_set_reads_back_what_was_written(tmp_path):
    rng = np.random.default_rng(0)
    feats = {s: {"pretrained": {"feat1": rng.normal(size=(n, 6)), "avgpool": rng.normal(size=(n, 3))},
                 "raw_pixels": {"avgpool": rng.normal(size=(n, 9))}} for s, n in (("train", 5), ("test", 4))}
    labels = {"train": np.array([0, 1, 2, 0, 1]), "test": np.array([2, 1, 0, 0])}
    write_feature_set(tmp_path, feats, labels, {"classes": ["a", "b", "c"]})
    fs = load_feature_set(str(tmp_path))
    assert fs.layers == ["feat1", "avgpool"] and fs.models == ["pretrained", "raw_pixels"]
    assert fs.meta["dims"] == {"feat1": 6, "avgpool": 3} and fs.splits == {"train": 5, "test": 4}
    assert not fs.multi_label and fs.x("test", "feat1").dtype == np.float32
    np.testing.assert_allclose(fs.x("train", "avgpool", "raw_pixels"), feats["train"]["raw_pixels"]["avgpool"],
                               rtol=1e-6)
    assert np.array_equal(fs.y("test"), labels["test"])
    with pytest.raises(DataError, match="test.raw_pixels.feat1.npy: not in the features artifact"):
        fs.x("test", "feat1", "raw_pixels")
    with pytest.raises(DataError, match="run the features stage first"):
        FeatureSet(str(tmp_path / "nothing"))
    with pytest.raises(DataError, match="3 rows for 5 labels"):
        write_feature_set(tmp_path / "bad", {"train": {"pretrained": {"avgpool": np.zeros((3, 2))}}},
                          {"train": np.zeros(5)}, {})


def test_one_pass_gives_every_layer_and_the_baselines_and_knn_reads_the_cache(fmnist_tiny, tiny_backbone, tmp_path):
    out = features(fmnist_tiny, tiny_backbone, str(tmp_path / "feats"))
    assert out["models"] == ["pretrained", "random_init", "raw_pixels"] and out["splits"] == {"train": 64, "test": 40}
    # ResNet-18 with 8 base channels on 28 px: stem 8 ch -> 12x12, stages 8/16/32/64 ch -> 6/4/3/2 cells
    assert out["dims"] == {"feat1": 8 * 144, "feat2": 8 * 36, "feat3": 16 * 16, "feat4": 32 * 9, "feat5": 64 * 4,
                           "avgpool": 64}
    fs = load_feature_set(str(tmp_path / "feats"))
    model, meta = load_backbone(tiny_backbone)
    direct, labels = extract_features(model, eval_dataset(fmnist_tiny, "test", meta["eval_pipeline"]),
                                      layers=("feat3", "avgpool"))
    np.testing.assert_allclose(fs.x("test", "feat3"), direct["feat3"], rtol=0, atol=1e-6)
    assert np.array_equal(fs.y("test"), labels)
    assert fs.x("train", "avgpool", "raw_pixels").shape == (64, 3 * 28 * 28)

    metrics = knn(str(tmp_path / "feats"), str(tmp_path / "knn"), ks=[3, 5])
    expected = knn_classify(fs.x("train", "avgpool"), fs.y("train"), direct["avgpool"], labels, (3, 5), 0.07, 10)
    assert metrics["results"]["pretrained"] == expected
    assert set(metrics["results"]) == {"pretrained", "random_init", "raw_pixels"}
    saved = json.loads((tmp_path / "knn" / "metrics.json").read_text())
    assert saved["results"]["raw_pixels"]["top1"]["5"] == metrics["results"]["raw_pixels"]["top1"][5]
    on_feat2 = knn(str(tmp_path / "feats"), str(tmp_path / "knn2"), ks=[3], layer="feat2")
    assert set(on_feat2["results"]) == {"pretrained"}  # the baselines are kept for avgpool only


def test_bad_layers_and_inputs_are_named(fmnist_tiny, tiny_backbone, tmp_path):
    with pytest.raises(ConfigError, match="layers of a ResNet backbone must be among"):
        features(fmnist_tiny, tiny_backbone, str(tmp_path / "f"), layers=["feat6"])
    with pytest.raises(DataError, match="run the extract stage first"):
        features(fmnist_tiny, str(tmp_path / "no-backbone"), str(tmp_path / "f"))
    assert not (tmp_path / "f").exists()
    write_feature_set(tmp_path, {"train": {"pretrained": {"avgpool": np.zeros((2, 2))}},
                                 "test": {"pretrained": {"avgpool": np.zeros((2, 2))}}},
                      {"train": np.ones((2, 3), np.int8), "test": np.ones((2, 3), np.int8)}, {"classes": list("abc")})
    with pytest.raises(DataError, match="multi-label"):
        knn(str(tmp_path), str(tmp_path / "k"))
    with pytest.raises(ConfigError, match="ks must be positive"):
        knn(str(tmp_path), str(tmp_path / "k"), ks=[0])


@pytest.mark.parametrize("stage", ["features", "knn"])
def test_a_step_given_gpus_it_cannot_see_fails_before_reading_anything(stage, tmp_path, monkeypatch):
    from ssl_lib.stages import features as features_module, knn as knn_module

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    run = {"features": lambda: features_module.features("/nowhere", "/nowhere", str(tmp_path / "o"), gpus=1),
           "knn": lambda: knn_module.knn("/nowhere", str(tmp_path / "o"), gpus=1)}[stage]
    with pytest.raises(ConfigError, match=f"{stage}: 1 GPU\\(s\\) requested but 0 visible"):
        run()


def test_the_benchmarks_list_becomes_one_switch_per_stage():
    switches = plan(["svm", "knn"])
    assert [k for k, on in switches.items() if on] == ["knn", "svm", "features", "voc_features"]
    assert plan(["low_shot_svm"])["voc_features"] and not plan(["low_shot_svm"])["features"]
    assert plan(["fast_linear"])["features"] and not plan(["linear", "semi"])["features"]
    with pytest.raises(ConfigError, match=r"unknown protocol\(s\) \['SVM'\]"):
        plan(["SVM"])
    with pytest.raises(ConfigError, match="empty"):
        plan([])


def test_the_plan_components_outputs_are_the_switches_in_order():
    from components.plan import plan_benchmarks

    outputs = list(plan_benchmarks.component_spec.outputs)
    assert outputs == list(plan(list(PROTOCOLS)))
