"""SimSiam: the symmetric stop-gradient loss, the predictor's fixed learning rate, the recipes."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from ssl_lib.config import load_config
from ssl_lib.engine.checkpoint import load as load_checkpoint
from ssl_lib.engine.hooks import Hook, SimSiamHook
from ssl_lib.engine.optimizer import build_optimizer
from ssl_lib.engine.runner import EpochRunner
from ssl_lib.engine.train import train
from ssl_lib.errors import ConfigError
from ssl_lib.models import build_algorithm
from ssl_lib.models.losses import negative_cosine
from ssl_lib.stages.extract import extract

TINY = str(Path(__file__).parent / "configs" / "simsiam_resnet18-w8_1xb16-coslr-2e_fmnist.py")
IN1K = ["selfsup/simsiam/simsiam_resnet50_8xb32-coslr-100e_in1k.py",
        "selfsup/simsiam/simsiam_resnet50_8xb32-coslr-200e_in1k.py"]


def views(batch: int = 8) -> list[torch.Tensor]:
    x = torch.randn(batch, 3, 28, 28)
    return [x + 0.1 * torch.randn_like(x), x + 0.1 * torch.randn_like(x)]


def test_two_steps_give_a_finite_loss_and_a_gradient_to_every_trainable_parameter():
    torch.manual_seed(0)
    cfg = load_config(TINY)
    model = build_algorithm(cfg.model).train()
    optimizer = build_optimizer(cfg.optimizer, model)
    for _ in range(2):
        loss = model(views(), mode="train")["loss"]
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
        assert set(trainable) and all(n.startswith(("backbone.", "neck.", "head.predictor.")) for n in trainable)
        assert [n for n, p in trainable.items() if p.grad is None or not torch.isfinite(p.grad).all()] == []
        optimizer.step()
    assert model.encoder[0] is model.backbone and model.encoder[1] is model.neck


def test_loss_is_half_the_sum_of_each_views_prediction_against_the_other_views_detached_projection():
    torch.manual_seed(0)
    model = build_algorithm(load_config(TINY).model).train()
    v1, v2 = views()
    loss = model([v1, v2])["loss"]
    z1, z2 = model.encoder(v1)[0], model.encoder(v2)[0]
    p1, p2 = model.head.predictor((z1,))[0], model.head.predictor((z2,))[0]
    cos = nn.functional.cosine_similarity
    torch.testing.assert_close(loss, 0.5 * (-cos(p1, z2).mean() - cos(p2, z1).mean()))
    # the stop-gradient: z only gets gradient through the predictor's input, never as a target
    z = torch.randn(4, 3, requires_grad=True)
    p = torch.randn(4, 3, requires_grad=True)
    negative_cosine(p, z).backward()
    assert z.grad is None and p.grad is not None


class _Lrs(Hook):
    """After the LR updater (VERY_HIGH) and SimSiamHook (HIGH): every group's lr and fix_lr flag."""

    priority = "NORMAL"

    def __init__(self):
        self.seen = []

    def before_train_iter(self, runner) -> None:
        self.seen.append((runner.global_iter, [(g["lr"], bool(g.get("fix_lr"))) for g in runner.optimizer.param_groups]))


@pytest.fixture(scope="module")
def tiny_run(fmnist_tiny, tmp_path_factory):
    """The tiny config trained for its 2 epochs (8 iterations), recording the lrs each iteration."""
    work = tmp_path_factory.mktemp("simsiam") / "whole"
    runner = EpochRunner(load_config(TINY), fmnist_tiny, str(work))
    lrs = _Lrs()
    runner.hooks.append(lrs)  # NORMAL: after the built-in and SimSiam hooks' before_train_iter
    fixed_names = [n for n, p in runner.algorithm.named_parameters()
                   if any(p is q for g in runner.optimizer.param_groups if g.get("fix_lr") for q in g["params"])]
    runner.run()
    return work, runner.max_iters, lrs.seen, fixed_names


def test_the_predictor_keeps_its_fixed_lr_while_every_other_group_follows_the_cosine_schedule(tiny_run):
    _, total, seen, fixed_names = tiny_run
    assert fixed_names and all(n.startswith("head.predictor.") for n in fixed_names)
    assert [k for k, _ in seen] == list(range(total)) and total == 8
    for k, groups in seen:
        cosine = 0.05 * 0.5 * (1 + math.cos(math.pi * k / total))  # lr 0.05, by iteration, min_lr 0
        assert {lr for lr, fixed in groups if fixed} == {0.05}
        others = [lr for lr, fixed in groups if not fixed]
        assert others and all(lr == pytest.approx(cosine, abs=1e-12) for lr in others)
    assert seen[-1][1][0][0] < 0.01  # the schedule did move the others


def test_resume_from_a_checkpoint_matches_the_uninterrupted_run_and_extract_gives_its_backbone(tiny_run, fmnist_tiny,
                                                                                               tmp_path):
    whole_dir = tiny_run[0]
    (tmp_path / "resumed").mkdir()
    shutil.copy(whole_dir / "epoch_1.pth", tmp_path / "resumed" / "epoch_1.pth")
    train(TINY, fmnist_tiny, str(tmp_path / "resumed"))
    whole = load_checkpoint(str(whole_dir / "epoch_2.pth"))
    resumed = load_checkpoint(str(tmp_path / "resumed" / "epoch_2.pth"))
    assert resumed["meta"]["iter"] == whole["meta"]["iter"] == 8
    for key, value in whole["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][key], value, msg=key)
    extract(str(tmp_path / "resumed"), str(tmp_path / "backbone"))
    weights = torch.load(tmp_path / "backbone" / "backbone.pth", weights_only=True)
    backbone = {k.removeprefix("backbone."): v for k, v in resumed["state_dict"].items() if k.startswith("backbone.")}
    assert weights.keys() == backbone.keys()
    for key, value in backbone.items():
        torch.testing.assert_close(weights[key], value)


class _FakeRunner:
    def __init__(self, groups):
        self.optimizer = torch.optim.SGD(groups, lr=0.5)


def _groups():
    return [dict(params=[nn.Parameter(torch.zeros(1))], lr=0.3, fix_lr=True),
            dict(params=[nn.Parameter(torch.zeros(1))], lr=0.2)]


def test_simsiam_hook_sets_only_the_fix_lr_groups_to_its_lr_before_each_iteration():
    runner = _FakeRunner(_groups())
    SimSiamHook(fix_pred_lr=True, lr=0.01).before_train_iter(runner)
    assert [g["lr"] for g in runner.optimizer.param_groups] == [0.01, 0.2]
    runner = _FakeRunner(_groups())
    SimSiamHook(fix_pred_lr=False, lr=0.01).before_train_iter(runner)
    assert [g["lr"] for g in runner.optimizer.param_groups] == [0.3, 0.2]


def test_simsiam_hook_without_a_fix_lr_group_names_the_optimizer_option_that_makes_one():
    runner = _FakeRunner([dict(params=[nn.Parameter(torch.zeros(1))])])
    with pytest.raises(ConfigError, match=r"optimizer.paramwise_options=\{'predictor': dict\(fix_lr=True\)\}"):
        SimSiamHook(fix_pred_lr=True, lr=0.01).before_run(runner)
    SimSiamHook(fix_pred_lr=False, lr=0.01).before_run(runner)


def test_a_predictor_that_does_not_read_the_projectors_width_is_named_at_build_time():
    cfg = load_config(TINY)
    cfg.model.head.predictor.in_channels = 16
    with pytest.raises(ConfigError, match=r"model.head.predictor.in_channels=16 does not match the neck's output "
                                          r"width 32; set model.head.predictor.in_channels=32"):
        build_algorithm(cfg.model)


def test_simsiam_refuses_a_pipeline_that_does_not_give_two_views():
    model = build_algorithm(load_config(TINY).model)
    with pytest.raises(ConfigError, match=r"SimSiam needs 2 views per sample, the pipeline gives 1"):
        model.check_data(num_samples=64, global_batch=16, num_views=1)


@pytest.mark.parametrize("config", IN1K)
def test_the_seeds_imagenet_recipes_load_and_build(config):
    cfg = load_config(config)
    model = build_algorithm(cfg.model)
    assert type(model).__name__ == "SimSiam"
    assert cfg.optimizer.type == "SGD" and cfg.optimizer.lr == 0.05 and cfg.optimizer.weight_decay == 1e-4
    assert cfg.optimizer.paramwise_options == {"predictor": dict(fix_lr=True)}
    assert cfg.custom_hooks == [dict(type="SimSiamHook", priority="HIGH", fix_pred_lr=True, lr=0.05)]
    assert cfg.runner.max_epochs == int(config.split("-")[-1].split("e_")[0])
    groups = build_optimizer(cfg.optimizer, model).param_groups
    fixed = {id(p) for g in groups if g.get("fix_lr") for p in g["params"]}
    assert fixed == {id(p) for p in model.head.predictor.parameters()}
