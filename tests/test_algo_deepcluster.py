"""DeepCluster: faiss k-means, the dataset's pseudo-labels and uniform sampling, the clustering hook
(head re-drawn, resume), the Sobel input, and a train -> resume -> extract round trip."""
from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import faiss
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DistributedSampler

from ssl_lib.config import load_config
from ssl_lib.data import build_pipeline
from ssl_lib.data.datasets import DeepClusterDataset
from ssl_lib.engine.train import train
from ssl_lib.errors import ConfigError
from ssl_lib.models import build_algorithm
from ssl_lib.models.clustering import Kmeans, preprocess_features
from ssl_lib.models.utils import Sobel
from ssl_lib.registry import HOOKS, build
from ssl_lib.stages.extract import extract

TINY = str(Path(__file__).parent / "configs" / "deepcluster_resnet18-w8_1xb16-steplr-2e_fmnist.py")
IN1K = "selfsup/deepcluster/deepcluster_resnet50_8xb64-steplr-200e_in1k.py"


class Source:
    """An in-memory data source of `n` random 28 px images."""

    def __init__(self, n: int):
        rng = np.random.default_rng(0)
        self.images = [Image.fromarray(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)) for _ in range(n)]

    def __len__(self) -> int:
        return len(self.images)

    def get_image(self, i: int) -> Image.Image:
        return self.images[i]

    def get_label(self, i: int) -> int:
        return i % 10


def blobs(sizes=(25, 25, 25, 25), dim: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Tight clusters around far-apart centres, rows shuffled."""
    rng = np.random.default_rng(1)
    centres = 10 * rng.standard_normal((len(sizes), dim))
    truth = np.repeat(np.arange(len(sizes)), sizes)
    x = centres[truth] + 0.1 * rng.standard_normal((len(truth), dim))
    perm = rng.permutation(len(truth))
    return x[perm].astype(np.float32), truth[perm]


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return len(set(zip(a.tolist(), b.tolist()))) == len(set(a.tolist())) == len(set(b.tolist()))


def tiny_runner(model, n: int = 40, k: int = 8, epoch: int = 0):
    cfg = load_config(TINY)
    dataset = DeepClusterDataset(Source(n), cfg.train_pipeline)
    return SimpleNamespace(cfg=cfg, dataset=dataset, algorithm=model, world_size=1, rank=0, device=torch.device("cpu"),
                           seed=0, epoch=epoch, max_epochs=2, log=logging.getLogger("test"))


def tiny_hook(k: int = 8, **overrides):
    cfg = dict(type="DeepClusterHook", extractor=dict(samples_per_gpu=16, pipeline=[dict(type="ToTensor")]),
               clustering=dict(type="Kmeans", k=k, pca_dim=16), unif_sampling=True, reweight=False, reweight_pow=0.5)
    return build({**cfg, **overrides}, HOOKS)


def test_tiny_config_trains_two_steps_with_every_parameter_getting_a_gradient():
    torch.manual_seed(0)
    model = build_algorithm(load_config(TINY).model).train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    x, labels = torch.randn(16, 3, 28, 28), torch.arange(16) % 8
    for _ in range(2):
        out = model([x], mode="train", pseudo_label=labels, idx=torch.arange(16))
        assert torch.isfinite(out["loss"])
        opt.zero_grad()
        out["loss"].backward()
        no_grad = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
        assert not no_grad
        opt.step()
    # uniform loss weights: the plain cross-entropy
    scores = model.head(model.neck(model.backbone(x)))[0]
    torch.testing.assert_close(model([x], pseudo_label=labels)["loss"], F.cross_entropy(scores, labels))


def test_kmeans_recovers_hand_made_well_separated_clusters_and_is_reproducible():
    x, truth = blobs()
    # k-means starts from k random points, so a seed can still land in a local minimum; these do not
    for pca_dim, seed in ((4, 0), (-1, 7)):
        labels = Kmeans(k=4, pca_dim=pca_dim).cluster(x, seed=seed)
        assert same_partition(labels, truth), pca_dim
        np.testing.assert_array_equal(Kmeans(k=4, pca_dim=pca_dim).cluster(x, seed=seed), labels)
    xb = preprocess_features(x, 4)
    assert xb.shape == (100, 4)
    np.testing.assert_allclose(np.linalg.norm(xb, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ConfigError, match=r"clustering.pca_dim=16 must be -1 \(no PCA\) or in 1..8"):
        preprocess_features(x, 16)


def test_pca_whitening_gives_every_kept_direction_the_same_variance():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2000, 6)) * [10, 5, 2, 1, 0.5, 0.1]).astype(np.float32)
    pca = faiss.PCAMatrix(6, 3, -0.5)  # what preprocess_features applies before the L2 normalisation
    pca.train(x)
    cov = np.cov(pca.apply(x).T)
    np.testing.assert_allclose(cov / cov[0, 0], np.eye(3), atol=1e-3)


def test_uniform_sampling_draws_each_cluster_equally_often_through_the_runners_sampler():
    ds = DeepClusterDataset(Source(100), [dict(type="ToTensor")])
    labels = np.array([0] * 85 + [1] * 5 + [2] * 5 + [3] * 5)
    ds.assign_labels(labels)
    ds.set_uniform_indices(labels, 4, np.random.default_rng(0))
    sampler = DistributedSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=0, drop_last=True)
    drawn = [ds[i] for i in sampler]
    counts = np.bincount([d["pseudo_label"] for d in drawn], minlength=4)
    # 26 draws per cluster (100 // 4 + 1), shuffled, the first 100 kept: at most 4 fewer for any cluster
    assert counts.sum() == 100 and counts.min() >= 22 and counts.max() <= 26, counts
    assert all(labels[d["idx"]] == d["pseudo_label"] for d in drawn)  # idx is the sample's own index
    assert len({d["idx"] for d in drawn if d["pseudo_label"] == 1}) == 5  # small clusters: every member drawn
    # an empty cluster is skipped; the list is filled up to the dataset's length
    two = np.array([0] * 95 + [1] * 5)
    ds.set_uniform_indices(two, 4, np.random.default_rng(0))
    assert len(ds.order) == 100 and np.bincount(two[ds.order]).min() >= 26


def test_head_is_redrawn_after_each_clustering_from_a_seeded_generator():
    torch.manual_seed(0)
    model = build_algorithm(load_config(TINY).model)
    runner, hook = tiny_runner(model), tiny_hook()
    hook.before_run(runner)
    assert (runner.dataset.clustering_labels >= 0).all() and len(set(runner.dataset.clustering_labels)) > 1
    first = model.head.fc_cls.weight.detach().clone()
    with torch.no_grad():
        model.head.fc_cls.weight.fill_(5.0)
        model.head.fc_cls.bias.fill_(5.0)
    hook.after_train_epoch(runner)  # epoch 0 done: clustering round 1
    expected = torch.empty_like(first).normal_(0.0, 0.01, generator=torch.Generator().manual_seed(runner.seed + 1))
    torch.testing.assert_close(model.head.fc_cls.weight, expected)
    assert not model.head.fc_cls.bias.any() and not torch.equal(first, expected)
    runner.epoch = 1
    hook.after_train_epoch(runner)  # the last epoch: no clustering after it
    torch.testing.assert_close(model.head.fc_cls.weight, expected)


def test_a_resumed_run_redoes_the_clustering_the_interrupted_run_did_after_its_checkpoint():
    torch.manual_seed(0)
    model = build_algorithm(load_config(TINY).model).eval()
    runner = tiny_runner(model)
    hook = tiny_hook()
    hook.before_run(runner)
    hook.after_train_epoch(runner)  # what an uninterrupted run does after epoch 1 (its checkpoint came just before)
    labels, order, head = runner.dataset.clustering_labels, runner.dataset.order, model.head.state_dict()
    state = hook.state_dict()

    resumed_runner, resumed = tiny_runner(model, epoch=1), tiny_hook()
    resumed.load_state_dict(state)
    resumed.before_run(resumed_runner)
    np.testing.assert_array_equal(resumed_runner.dataset.clustering_labels, labels)
    np.testing.assert_array_equal(resumed_runner.dataset.order, order)
    for key, value in head.items():
        torch.testing.assert_close(model.head.state_dict()[key], value)
    # with interval 2 there was no clustering after epoch 1: the labels come back from the hook state
    every_two, runner = tiny_hook(interval=2), tiny_runner(model)
    every_two.before_run(runner)
    every_two.after_train_epoch(runner)
    state, labels = every_two.state_dict(), runner.dataset.clustering_labels
    with torch.no_grad():
        model.head.fc_cls.weight.fill_(5.0)
    later, later_runner = tiny_hook(interval=2), tiny_runner(model, epoch=1)
    later.load_state_dict(state)
    later.before_run(later_runner)
    np.testing.assert_array_equal(later_runner.dataset.clustering_labels, labels)
    assert later.round == 0 and (model.head.fc_cls.weight == 5.0).all()  # no clustering, no new head


def test_sobel_layer_matches_the_sobel_eval_transform_and_feeds_a_2_channel_backbone():
    img = torch.randn(3, 9, 7)
    (sobel_transform,) = build_pipeline([dict(type="Sobel")]).transforms
    torch.testing.assert_close(Sobel()(img[None])[0], sobel_transform(img))
    flat = torch.ones(3, 5, 5)  # no edges inside; the zero padding makes them at the border
    assert not sobel_transform(flat)[:, 1:-1, 1:-1].any()
    cfg = load_config(IN1K).model
    cfg.backbone.update(depth=18, base_channels=8)
    cfg.head.update(in_channels=64, num_classes=4)
    model = build_algorithm(cfg).eval()
    assert model.backbone.conv1.in_channels == 2 and not any(p.requires_grad for p in model.sobel_layer.parameters())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        sobel_input = torch.stack([sobel_transform(i) for i in x])
        torch.testing.assert_close(model(x, mode="extract")[0], model.backbone(sobel_input)[0])
    with pytest.raises(ConfigError, match=r"model.backbone.in_channels=3 but with_sobel=True gives the backbone 2"):
        build_algorithm({**cfg, "backbone": {**cfg.backbone, "in_channels": 3}})


def test_bad_inputs_are_config_errors_naming_the_field(fmnist_tiny, tmp_path):
    with pytest.raises(ConfigError, match=r"custom_hooks\[0\].clustering.k=100 is more clusters than the 64 training "
                                          r"images; use at most 64"):
        train(TINY, fmnist_tiny, str(tmp_path / "k"), ["custom_hooks.0.clustering.k=100"])
    with pytest.raises(ConfigError, match=r"model.head.num_classes=100 is more clusters than the 64 training images"):
        train(TINY, fmnist_tiny, str(tmp_path / "c"), ["model.head.num_classes=100"])
    assert not (tmp_path / "k" / "epoch_1.pth").exists()
    model = build_algorithm(load_config(TINY).model)
    with pytest.raises(ConfigError, match=r"custom_hooks\[0\].clustering.k=6 but model.head.num_classes=8"):
        tiny_hook(k=6).before_run(tiny_runner(model))
    with pytest.raises(ConfigError, match=r"custom_hooks\[0\].clustering.pca_dim=16 must be -1 \(no PCA\) or in 1..8"):
        tiny_hook(k=8).before_run(tiny_runner(build_algorithm(load_config(TINY, ["model.backbone.base_channels=1",
                                                                                   "model.head.in_channels=8"]).model)))
    with pytest.raises(ConfigError, match=r"set data.train.type='DeepClusterDataset' and add a DeepClusterHook"):
        model([torch.randn(2, 3, 28, 28)], idx=torch.arange(2))
    with pytest.raises(ConfigError, match=r"extractor takes samples_per_gpu, workers_per_gpu, pipeline"):
        tiny_hook(extractor=dict(imgs_per_gpu=8, pipeline=[]))


def test_train_resume_and_extract_on_the_tiny_config_match_an_uninterrupted_run(fmnist_tiny, tmp_path):
    whole = train(TINY, fmnist_tiny, str(tmp_path / "whole"))
    first = train(TINY, fmnist_tiny, str(tmp_path / "work"), ["runner.max_epochs=1"])
    assert first["iterations"] == 4
    resumed = train(TINY, fmnist_tiny, str(tmp_path / "work"))
    assert resumed["iterations"] == whole["iterations"] == 8
    ref = torch.load(tmp_path / "whole" / "epoch_2.pth", weights_only=True)
    got = torch.load(tmp_path / "work" / "epoch_2.pth", weights_only=True)
    for key in ref["state_dict"]:
        torch.testing.assert_close(got["state_dict"][key], ref["state_dict"][key], rtol=1e-5, atol=1e-6, msg=key)
    (hook_state,) = [h for h in got["hooks"][0] if "round" in h]
    assert hook_state["round"] == 1  # the labels of the clustering after epoch 1
    info = extract(str(tmp_path / "work"), str(tmp_path / "extracted"))
    weights = torch.load(tmp_path / "extracted" / "backbone.pth", weights_only=True)
    assert info["algorithm"] == "DeepCluster"
    torch.testing.assert_close(weights["conv1.weight"], got["state_dict"]["backbone.conv1.weight"])


@pytest.mark.parametrize("recipe", [IN1K])
def test_imagenet_recipe_loads_and_builds_with_the_seeds_settings(recipe):
    cfg = load_config(recipe)
    model = build_algorithm(cfg.model)
    assert type(model).__name__ == "DeepCluster" and model.with_sobel and model.backbone.conv1.in_channels == 2
    assert model.head.num_classes == 10000 and model.head.in_channels == 2048 and not model.head.with_avg_pool
    assert cfg.optimizer.lr == 0.1 and cfg.optimizer.weight_decay == 1e-5 and cfg.optimizer.momentum == 0.9
    assert cfg.optimizer.paramwise_options == {"\\Ahead.": dict(momentum=0.0)}
    assert cfg.lr_config.step == [400] and cfg.runner.max_epochs == 200 and cfg.data.samples_per_gpu == 64
    (hook,) = cfg.custom_hooks
    assert hook.clustering == dict(type="Kmeans", k=10000, pca_dim=256) and hook.unif_sampling and not hook.reweight
    assert [t.type for t in cfg.data.train.pipeline][:5] == [
        "RandomResizedCrop", "RandomHorizontalFlip", "RandomRotation", "ColorJitter", "RandomGrayscale"]
    assert cfg.eval_pipeline[-1].type == "Sobel"
    build(dict(hook), HOOKS)
