"""Barlow Twins: LatentCrossCorrelationHead's loss by hand, the loss and its gradients over two ranks
against one process, the seed's recipe, and a train -> resume -> extract round trip on the tiny config."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from ssl_lib.config import load_config
from ssl_lib.engine.optimizer import build_optimizer
from ssl_lib.engine.train import train
from ssl_lib.errors import ConfigError
from ssl_lib.models import LatentCrossCorrelationHead, build_algorithm
from ssl_lib.registry import ALGORITHMS, build
from ssl_lib.stages.extract import extract
from test_algo_simclr import torchrun, two_views

TINY = str(Path(__file__).parent / "configs" / "barlowtwins_resnet18-w8_1xb16-coslr-2e_fmnist.py")
IN1K = "selfsup/barlowtwins/barlowtwins_resnet50_8xb256-coslr-300e_in1k.py"


def tiny_cfg(**overrides) -> dict:
    cfg = dict(
        type="BarlowTwins",
        backbone=dict(type="ResNet", depth=18, base_channels=8, stem="cifar"),
        neck=dict(type="NonLinearNeck", in_channels=64, hid_channels=32, out_channels=16, num_layers=3,
                  with_last_bn=False, norm_cfg=dict(type="BN")),
        head=dict(type="LatentCrossCorrelationHead", in_channels=16))
    cfg.update(overrides)
    return cfg


def test_tiny_config_trains_two_steps_with_every_parameter_getting_a_gradient():
    # zero_init_residual (the seed's): a block's inner layers get gradients once its last BN has moved
    torch.manual_seed(0)
    model = build_algorithm(load_config(TINY).model).train()
    assert not hasattr(model.neck, "bn2") and model.neck.fc2.bias is None  # the seed's projector end: a bare fc
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    views, grads = two_views(16, 28), set()
    for _ in range(2):
        loss = model(views, mode="train")["loss"]
        assert torch.isfinite(loss) and loss > 0
        opt.zero_grad()
        loss.backward()
        grads.update(n for n, p in model.named_parameters() if p.grad is not None and p.grad.any())
        opt.step()
    assert grads == {n for n, _ in model.named_parameters()}


def test_head_loss_is_the_cross_correlation_loss_computed_by_hand():
    # two 2-d embeddings of 4 samples; centred columns a0 = (1, -1, 1, -1), a1 = (1, 1, -1, -1) for view 1
    # and b0 = (2, -2, 2, -2), b1 = (1, -1, -1, 1) for view 2: C = [[1, 0], [0, 0]] (cosines of the columns)
    z1 = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]]) + torch.tensor([3.0, -2.0])
    z2 = torch.tensor([[2.0, 1.0], [-2.0, -1.0], [2.0, -1.0], [-2.0, 1.0]])
    head = LatentCrossCorrelationHead(in_channels=2, lambd=0.5)
    # on-diagonal (1 - 1)^2 + (1 - 0)^2 = 1; off-diagonal C_01 = cos(a0, b1) = 0, C_10 = cos(a1, b0) = 0
    assert head(z1, z2)["loss"].item() == pytest.approx(1.0, abs=1e-6)
    z2_mixed = z2 + torch.tensor([[0.0, 2.0], [0.0, -2.0], [0.0, 2.0], [0.0, -2.0]])  # b1 = (3, -3, 1, -1)
    c01 = (1 * 3 + 1 * 3 + 1 * 1 + 1 * 1) / (2 * math.sqrt(20))  # cos(a0, b1)
    c11 = (3 - 3 - 1 + 1) / (2 * math.sqrt(20))  # cos(a1, b1) = 0
    assert head(z1, z2_mixed)["loss"].item() == pytest.approx((1 - c11) ** 2 + 0.5 * c01 ** 2, rel=1e-5)
    assert LatentCrossCorrelationHead().lambd == 0.0051 and LatentCrossCorrelationHead().in_channels == 8192


def test_two_ranks_give_the_one_process_loss_and_gradients_over_the_global_batch(tmp_path):
    reports = torchrun("ddp_gathered_loss.py", "BarlowTwins", tmp_path)
    assert sorted(r["rank"] for r in reports) == [0, 1]
    for r in reports:
        assert r["loss_dist"] == pytest.approx(r["loss_one"], rel=1e-5)
        assert r["grad_diff"] <= 1e-4 * r["grad_scale"] and r["param_diff"] <= 1e-4 * r["param_scale"]


def test_bad_inputs_are_config_errors_naming_the_field():
    with pytest.raises(ConfigError, match=r"model.head.in_channels=32 does not match the neck's output width 16; "
                                          r"set model.head.in_channels=16"):
        build(tiny_cfg(head=dict(type="LatentCrossCorrelationHead", in_channels=32)), ALGORITHMS)
    model = build(tiny_cfg(), ALGORITHMS)
    with pytest.raises(ConfigError, match=r"BarlowTwins needs 2 views per sample, the pipeline gives 1"):
        model.check_data(num_samples=64, global_batch=8, num_views=1)
    with pytest.raises(ConfigError, match=r"global batch of 1 has no variance; set data.samples_per_gpu"):
        model.check_data(num_samples=64, global_batch=1, num_views=2)


def test_train_resume_and_extract_on_the_tiny_config(fmnist_tiny, tmp_path):
    work = tmp_path / "work"
    first = train(TINY, fmnist_tiny, str(work), ["runner.max_epochs=1"])
    assert first["iterations"] == 4
    resumed = train(TINY, fmnist_tiny, str(work))
    assert resumed["iterations"] == 8 and math.isfinite(resumed["final_loss"])
    state = torch.load(work / "epoch_2.pth", weights_only=True)["state_dict"]
    assert {"neck.fc2.weight", "neck.bn1.running_var"} <= set(state) and "neck.bn2.running_var" not in state
    info = extract(str(work), str(tmp_path / "extracted"))
    weights = torch.load(tmp_path / "extracted" / "backbone.pth", weights_only=True)
    assert info["algorithm"] == "BarlowTwins"
    torch.testing.assert_close(weights["conv1.weight"], state["backbone.conv1.weight"])


@pytest.mark.parametrize("recipe", [IN1K])
def test_imagenet_recipe_loads_and_builds_with_the_seeds_settings(recipe):
    cfg = load_config(recipe)
    model = build_algorithm(cfg.model)
    neck = model.neck
    assert type(model).__name__ == "BarlowTwins" and model.head.lambd == 0.0051 and model.head.in_channels == 8192
    assert [getattr(neck, f"fc{i}").weight.shape for i in range(3)] == [(8192, 2048), (8192, 8192), (8192, 8192)]
    assert not hasattr(neck, "bn2") and isinstance(neck.bn1, nn.SyncBatchNorm)
    bound = math.sqrt(6 / 8192)  # the seed's Kaiming uniform init (fan_out, relu)
    assert 0.99 * bound < neck.fc1.weight.abs().max().item() <= bound
    assert model.backbone.layer1[0].bn3.weight.abs().sum() == 0  # zero_init_residual
    opt = cfg.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ("LARS", 1.6, 0.9, 1e-6)
    assert cfg.lr_config.warmup_iters == 10 and cfg.lr_config.min_lr == 0.0016 and cfg.runner.max_epochs == 300
    assert cfg.data.samples_per_gpu == 256 and cfg.data.train.num_views == [1, 1]

    groups = build_optimizer(opt, model).param_groups
    lr_of = {id(p): (g["lr"], g["lars_exclude"], g["weight_decay"]) for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    for name in ("neck.bn0.weight", "backbone.layer2.0.downsample.1.weight", "backbone.bn1.bias"):
        assert lr_of[id(named[name])] == (pytest.approx(1.6 * 0.024), True, 0)
    assert lr_of[id(named["neck.fc0.weight"])] == (1.6, False, 1e-6)
