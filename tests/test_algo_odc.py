"""ODC: the memory (momentum update, nearest-centroid labels, centroids, small clusters), the loss
re-weighting, the neck, the features split over ranks, and a train -> resume -> extract round trip."""
from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from ssl_lib.config import load_config
from ssl_lib.engine.hooks.deepcluster_hook import extract_features
from ssl_lib.engine.train import train
from ssl_lib.errors import ConfigError
from ssl_lib.models import ODCMemory, ODCNeck, build_algorithm
from ssl_lib.models.clustering import cluster_weights
from ssl_lib.registry import HOOKS, build
from ssl_lib.stages.extract import extract
from test_algo_deepcluster import Source

TINY = str(Path(__file__).parent / "configs" / "odc_resnet18-w8_1xb16-steplr-2e_fmnist.py")
IN1K = "selfsup/odc/odc_resnet50_8xb64-steplr-440e_in1k.py"


def unit(*rows) -> np.ndarray:
    x = np.array(rows, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def tiny_model():
    torch.manual_seed(0)
    model = build_algorithm(load_config(TINY).model)
    model.memory_bank.init_memory(np.random.default_rng(0).standard_normal((64, 16)).astype(np.float32),
                                  np.arange(64) % 4)
    return model


def test_tiny_config_trains_two_steps_with_every_parameter_getting_a_gradient_and_the_batch_rows_updated():
    model = tiny_model().train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    x = torch.randn(16, 3, 28, 28)
    for step in range(2):
        bank = model.memory_bank.feature_bank.clone()
        idx = torch.arange(16) + 16 * step
        out = model([x], mode="train", idx=idx)
        assert torch.isfinite(out["loss"]) and 0 <= out["change_ratio"] <= 1
        opt.zero_grad()
        out["loss"].backward()
        no_grad = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
        assert not no_grad
        opt.step()
        moved = (model.memory_bank.feature_bank != bank).any(dim=1)
        assert moved[idx].all() and not moved[torch.cat([torch.arange(0, idx[0]), torch.arange(idx[-1] + 1, 64)])].any()


def test_memory_update_follows_the_momentum_rule_and_relabels_by_the_nearest_centroid():
    memory = ODCMemory(length=6, feat_dim=2, momentum=0.8, num_classes=2, min_cluster=1)
    feats = np.array([[1, 0], [2, 0], [0, 1], [0, 3], [1, 1], [3, 4]], dtype=np.float32)
    memory.init_memory(feats, np.array([0, 0, 1, 1, 0, 1]))
    bank = unit([1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [3, 4])
    np.testing.assert_allclose(memory.feature_bank.numpy(), bank, rtol=1e-6)
    centroids = np.stack([bank[[0, 1, 4]].mean(0), bank[[2, 3, 5]].mean(0)])  # (.902, .236), (.2, .933)
    np.testing.assert_allclose(memory.centroids.numpy(), centroids, rtol=1e-6)

    change = memory.update_samples_memory(torch.tensor([1, 4, 3]),
                                          torch.tensor([[0.0, 2.0], [3.0, -4.0], [0.8, 0.6]]))
    # new = normalize((1 - m) * old + m * normalize(feature)), m = 0.8
    new1 = unit(0.2 * bank[1] + 0.8 * np.array([0.0, 1.0]))[0]  # (.243, .970): nearer centroid 1
    new4 = unit(0.2 * bank[4] + 0.8 * np.array([0.6, -0.8]))[0]  # (.780, -.626): nearer centroid 0
    new3 = unit(0.2 * bank[3] + 0.8 * np.array([0.8, 0.6]))[0]  # (.685, .728): nearer 1 (the feature alone: 0)
    expected = bank.copy()
    expected[1], expected[4], expected[3] = new1, new4, new3
    np.testing.assert_allclose(memory.feature_bank.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert memory.label_bank.tolist() == [0, 1, 1, 1, 0, 1]
    assert float(change) == pytest.approx(1 / 3)  # sample 1 moved to cluster 1; 4 and 3 stayed
    np.testing.assert_allclose(memory.centroids.numpy(), centroids, rtol=1e-6)  # until the next centroid update
    memory.update_centroids_memory()
    np.testing.assert_allclose(memory.centroids.numpy(), [expected[[0, 4]].mean(0), expected[[1, 2, 3, 5]].mean(0)],
                               rtol=1e-5)


def test_small_clusters_are_dissolved_and_the_largest_split_in_two():
    a = [[1, 0.01], [1, -0.01], [1, 0.02], [1, -0.02]]        # near (1, 0)
    b = [[0.01, 1], [-0.01, 1], [0.02, 1], [-0.02, 1]]        # near (0, 1)
    c = [[0.01, -1], [-0.01, -1], [0.02, -1]]                 # near (0, -1)
    d = [[-0.6, -0.8]]                                        # alone: a cluster under min_cluster
    memory = ODCMemory(length=12, feat_dim=2, momentum=0.5, num_classes=3, min_cluster=2)
    memory.init_memory(np.array(a + b + c + d, dtype=np.float32), np.array([0] * 8 + [1] * 3 + [2]))
    memory.deal_with_small_clusters()
    labels = memory.label_bank.numpy()
    assert labels[11] == 1  # d went to the nearest other centroid: (0, -1) rather than (.5, .5)
    assert (labels[8:11] == 1).all()
    assert len(set(labels[:4])) == len(set(labels[4:8])) == 1 and {labels[0], labels[4]} == {0, 2}
    assert np.bincount(labels, minlength=3).tolist() == [4, 4, 4]
    bank = memory.feature_bank.numpy()
    for group in (slice(0, 4), slice(4, 8)):  # the two halves got their own centroids
        np.testing.assert_allclose(memory.centroids[labels[group][0]].numpy(), bank[group].mean(0), rtol=1e-5)


def test_reweight_is_inverse_cluster_size_to_the_power_normalised_as_the_seed():
    labels = np.repeat(np.arange(4), [4, 9, 16, 35])
    expected = np.array([1 / 2, 1 / 3, 1 / 4, 35 ** -0.5])
    expected /= expected.sum()
    np.testing.assert_allclose(cluster_weights(labels, 4, 0.5), expected, rtol=1e-6)
    np.testing.assert_allclose(cluster_weights(labels, 4, 1.0), [1 / 4, 1 / 9, 1 / 16, 1 / 35] / np.sum(
        [1 / 4, 1 / 9, 1 / 16, 1 / 35]), rtol=1e-6)
    model = tiny_model().eval()
    model.memory_bank.label_bank = torch.from_numpy(labels)
    model.set_reweight(reweight_pow=0.5)
    np.testing.assert_allclose(model.loss_weight.numpy(), expected, rtol=1e-6)
    # the loss is the weighted mean of the per-sample cross-entropies
    x, idx = torch.randn(8, 3, 28, 28), torch.tensor([0, 5, 20, 40, 41, 63, 13, 3])
    with torch.no_grad():
        scores = model.head(model.neck(model.backbone(x)))[0]
        y = torch.from_numpy(labels)[idx]
        w = torch.from_numpy(expected).float()[y]
        hand = (w * F.cross_entropy(scores, y, reduction="none")).sum() / w.sum()
        torch.testing.assert_close(model([x], idx=idx)["loss"], hand)


def test_odc_neck_is_the_seeds_fc_bn_relu_dropout_fc_relu():
    neck = ODCNeck(in_channels=4, hid_channels=3, out_channels=2, norm_cfg=dict(type="BN")).eval()
    assert set(neck.state_dict()) == {"fc0.weight", "fc0.bias", "bn0.running_mean", "bn0.running_var",
                                      "bn0.num_batches_tracked", "fc1.weight", "fc1.bias"}
    assert neck.bn0.momentum == 0.001 and not neck.bn0.affine
    x = torch.randn(5, 4, 3, 3)
    h = F.relu(neck.fc0(x.mean((2, 3))) / (1 + 1e-5) ** 0.5)  # eval BN with fresh statistics: x / sqrt(1 + eps)
    torch.testing.assert_close(neck((x,))[0], F.relu(neck.fc1(h)))
    with pytest.raises(ConfigError, match="norm_cfg type 'GN'"):
        ODCNeck(4, 3, 2, norm_cfg=dict(type="GN"))


def test_three_ranks_extract_equal_slices_and_rank_0_gets_every_row_in_order(monkeypatch):
    torch.manual_seed(0)
    model = build_algorithm(load_config(TINY).model)
    source, cfg = Source(10), dict(samples_per_gpu=3, workers_per_gpu=0, pipeline=[dict(type="ToTensor")])

    def runner(rank: int, world: int) -> SimpleNamespace:
        return SimpleNamespace(dataset=SimpleNamespace(data_source=source), algorithm=model, world_size=world,
                               rank=rank, device=torch.device("cpu"))

    sent: dict[int, list[torch.Tensor]] = {0: [], 1: [], 2: []}

    def all_gather_as(rank: int):
        def all_gather(parts, part):  # what each rank sends; rank 0 receives the others' sends of this step
            step = len(sent[rank])
            sent[rank].append(part.clone())
            for r, p in enumerate(parts):
                if r == rank or step < len(sent[r]):
                    p.copy_(part if r == rank else sent[r][step])
        return all_gather

    for rank in (2, 1, 0):  # 10 rows, 4 per rank: rank 2 reads 8, 9 and 9, 9 again as padding
        monkeypatch.setattr(dist, "all_gather", all_gather_as(rank))
        feats = extract_features(runner(rank, 3), cfg)
        assert (feats is None) == (rank != 0)
    assert [len(sent[r][0]) for r in range(3)] == [4, 4, 4]
    alone = extract_features(runner(0, 1), cfg)
    assert alone.shape == (10, 16)
    np.testing.assert_allclose(feats, alone, rtol=1e-5, atol=1e-6)


def test_bad_inputs_are_config_errors_naming_the_field(fmnist_tiny, tmp_path):
    with pytest.raises(ConfigError, match=r"model.memory_bank.length=100 but the training split has 64 images; "
                                          r"set model.memory_bank.length=64"):
        train(TINY, fmnist_tiny, str(tmp_path / "l"), ["model.memory_bank.length=100"])
    with pytest.raises(ConfigError, match=r"custom_hooks\[0\].clustering.k=65 is more clusters than the 64 training"):
        train(TINY, fmnist_tiny, str(tmp_path / "k"), ["custom_hooks.0.clustering.k=65"])
    cfg = load_config(TINY).model
    with pytest.raises(ConfigError, match=r"min_cluster=20 x num_classes=4 is more than the 64 samples"):
        build_algorithm({**cfg, "memory_bank": {**cfg.memory_bank, "min_cluster": 20}})
    with pytest.raises(ConfigError, match=r"model.memory_bank.num_classes=5 but model.head.num_classes=4"):
        build_algorithm({**cfg, "memory_bank": {**cfg.memory_bank, "num_classes": 5}})
    with pytest.raises(ConfigError, match=r"model.memory_bank.feat_dim=8 but the neck outputs 16"):
        build_algorithm({**cfg, "memory_bank": {**cfg.memory_bank, "feat_dim": 8}})
    with pytest.raises(ConfigError, match=r"add DeepClusterHook\(init_memory=True, ...\) to custom_hooks"):
        build_algorithm(cfg)([torch.randn(2, 3, 28, 28)], idx=torch.arange(2))
    runner = SimpleNamespace(cfg=load_config(TINY), algorithm=build_algorithm(load_config(
        "selfsup/deepcluster/deepcluster_resnet18-w16_1xb64-steplr-10e_fmnist.py").model), world_size=1)
    with pytest.raises(ConfigError, match=r"custom_hooks\[1\] \(ODCHook\) needs an algorithm with a memory_bank"):
        build(dict(type="ODCHook", centroids_update_interval=1, deal_with_small_clusters_interval=1,
                   evaluate_interval=1, reweight=True, reweight_pow=0.5), HOOKS).before_run(runner)


def test_train_resume_and_extract_on_the_tiny_config_match_an_uninterrupted_run(fmnist_tiny, tmp_path):
    train(TINY, fmnist_tiny, str(tmp_path / "whole"))
    assert train(TINY, fmnist_tiny, str(tmp_path / "work"), ["runner.max_epochs=1"])["iterations"] == 4
    assert train(TINY, fmnist_tiny, str(tmp_path / "work"))["iterations"] == 8
    ref = torch.load(tmp_path / "whole" / "epoch_2.pth", weights_only=True)["state_dict"]
    got = torch.load(tmp_path / "work" / "epoch_2.pth", weights_only=True)["state_dict"]
    assert got["memory_bank.feature_bank"].shape == (64, 16) and got["memory_bank.label_bank"].shape == (64,)
    for key in ref:  # the memory too: the resumed run went on with the one it had saved
        torch.testing.assert_close(got[key], ref[key], rtol=1e-5, atol=1e-6, msg=key)
    info = extract(str(tmp_path / "work"), str(tmp_path / "extracted"))
    weights = torch.load(tmp_path / "extracted" / "backbone.pth", weights_only=True)
    assert info["algorithm"] == "ODC"
    torch.testing.assert_close(weights["conv1.weight"], got["backbone.conv1.weight"])


@pytest.mark.parametrize("recipe", [IN1K])
def test_imagenet_recipe_loads_and_builds_with_the_seeds_settings(recipe):
    cfg = load_config(recipe)
    model = build_algorithm(cfg.model)
    assert type(model).__name__ == "ODC" and not model.with_sobel and model.num_classes == 10000
    memory = model.memory_bank
    assert (memory.length, memory.feat_dim, memory.momentum, memory.min_cluster) == (1281167, 256, 0.5, 20)
    assert model.neck.in_channels == 2048 and model.neck.out_channels == 256 and model.head.in_channels == 256
    assert cfg.optimizer.lr == 0.06 and cfg.optimizer.weight_decay == 1e-5 and cfg.runner.max_epochs == 440
    assert cfg.lr_config.step == [400] and cfg.lr_config.gamma == 0.4 and cfg.data.samples_per_gpu == 64
    dc, odc = cfg.custom_hooks
    assert dc.init_memory and dc.clustering == dict(type="Kmeans", k=10000, pca_dim=-1) and not dc.unif_sampling
    assert (odc.centroids_update_interval, odc.deal_with_small_clusters_interval, odc.evaluate_interval) == (10, 1, 50)
    for hook in cfg.custom_hooks:
        build(dict(hook), HOOKS)
