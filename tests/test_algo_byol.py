"""BYOL: online/target networks, the momentum schedule the hook drives, the head's loss, the recipes."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from ssl_lib.config import load_config
from ssl_lib.engine.checkpoint import load as load_checkpoint
from ssl_lib.engine.hooks import Hook, MomentumUpdateHook, get_priority
from ssl_lib.engine.optimizer import build_optimizer
from ssl_lib.engine.runner import EpochRunner
from ssl_lib.engine.train import train
from ssl_lib.errors import ConfigError
from ssl_lib.models import LatentPredictHead, build_algorithm
from ssl_lib.stages.extract import extract

TINY = str(Path(__file__).parent / "configs" / "byol_resnet18-w8_1xb16-coslr-2e_fmnist.py")
IN1K = ["selfsup/byol/byol_resnet50_8xb32-accum16-coslr-200e_in1k.py"]


def tiny_byol(**model_overrides):
    cfg = load_config(TINY)
    cfg.model.update(model_overrides)
    return cfg, build_algorithm(cfg.model)


def views(batch: int = 8) -> list[torch.Tensor]:
    x = torch.randn(batch, 3, 28, 28)
    return [x + 0.1 * torch.randn_like(x), x + 0.1 * torch.randn_like(x)]


def seed_momentum(base: float, k: int, total: int, end: float = 1.0) -> float:
    """The seed's rule: m = end - (end - base) * (cos(pi * k / K) + 1) / 2."""
    return end - (end - base) * (math.cos(math.pi * k / total) + 1) / 2


class FakeRunner:
    def __init__(self, algorithm, global_iter: int, max_iters: int):
        self.algorithm, self.global_iter, self.max_iters = algorithm, global_iter, max_iters


def test_two_steps_every_trainable_parameter_gets_a_gradient_and_the_target_moves_by_the_hooks_momentum():
    torch.manual_seed(0)
    cfg, model = tiny_byol(base_momentum=0.9)
    model.train()
    optimizer = build_optimizer(cfg.optimizer, model)
    hook = MomentumUpdateHook(end_momentum=1.0)
    for k in range(2):
        runner = FakeRunner(model, global_iter=k, max_iters=4)
        hook.before_train_iter(runner)
        m = seed_momentum(0.9, k, 4)
        assert model.momentum == pytest.approx(m, abs=1e-12)
        loss = model(views(), mode="train")["loss"]
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
        assert set(trainable) and all(n.startswith(("backbone.", "neck.", "head.predictor.")) for n in trainable)
        assert [n for n, p in trainable.items() if p.grad is None or not torch.isfinite(p.grad).all()] == []
        assert all(p.grad is None for p in model.target_net.parameters())
        optimizer.step()
        target = [p.detach().clone() for p in model.target_net.parameters()]
        online = [p.detach().clone() for p in model.online_net.parameters()]
        hook.after_train_iter(runner)
        for t_new, t_old, o in zip(model.target_net.parameters(), target, online):
            torch.testing.assert_close(t_new, m * t_old + (1 - m) * o, rtol=0, atol=1e-6)
        assert any(not torch.equal(t_new, t_old) for t_new, t_old in zip(model.target_net.parameters(), target))


def test_the_target_starts_as_a_copy_of_the_online_network_and_the_backbone_is_the_online_ones():
    _, model = tiny_byol()
    assert model.online_net[0] is model.backbone and model.online_net[1] is model.neck
    for o, t in zip(model.online_net.state_dict().values(), model.target_net.state_dict().values()):
        torch.testing.assert_close(o, t)
    assert not any(p.requires_grad for p in model.target_net.parameters())
    assert model.momentum == model.base_momentum == 0.99


def test_loss_is_twice_the_sum_of_each_views_prediction_of_the_other_views_target():
    torch.manual_seed(0)
    _, model = tiny_byol()
    model.train()
    v1, v2 = views()
    state = {k: v.clone() for k, v in model.state_dict().items()}  # BN running stats move at each pass
    loss = model([v1, v2])["loss"]
    model.load_state_dict(state)
    with torch.no_grad():
        o1, o2 = model.online_net(v1)[0], model.online_net(v2)[0]
        t1, t2 = model.target_net(v1)[0], model.target_net(v2)[0]
        p1, p2 = model.head.predictor((o1,))[0], model.head.predictor((o2,))[0]
    cos = nn.functional.cosine_similarity
    expected = 2 * (-cos(p1, t2).mean() - cos(p2, t1).mean())
    torch.testing.assert_close(loss.detach(), expected)


def test_latent_predict_head_is_minus_the_mean_cosine_of_prediction_and_target_with_no_gradient_to_the_target():
    head = LatentPredictHead(predictor=dict(type="LinearNeck", in_channels=2, out_channels=2, with_avg_pool=False))
    with torch.no_grad():
        head.predictor.fc.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))
        head.predictor.fc.bias.zero_()
    x = torch.tensor([[1.0, 0.0], [1.0, 2.0]], requires_grad=True)
    target = torch.tensor([[3.0, 0.0], [1.0, 0.0]], requires_grad=True)
    loss = head(x, target)["loss"]
    # predictions [2, 0] and [2, 2]: cosines 1 and 1/sqrt(2) with the targets
    assert loss.item() == pytest.approx(-(1 + 1 / math.sqrt(2)) / 2, rel=1e-6)
    loss.backward()
    assert target.grad is None and x.grad is not None


class _Snapshot(Hook):
    """After the optimizer step (40), before MomentumUpdateHook (50): the momentum and both networks."""

    priority = 45

    def __init__(self):
        self.seen = []

    def after_train_iter(self, runner) -> None:
        model = runner.algorithm
        self.seen.append((runner.global_iter, model.momentum, [p.detach().clone() for p in model.target_net.parameters()],
                          [p.detach().clone() for p in model.online_net.parameters()]))


class _After(Hook):
    priority = 60

    def __init__(self):
        self.targets = []

    def after_train_iter(self, runner) -> None:
        self.targets.append([p.detach().clone() for p in runner.algorithm.target_net.parameters()])


@pytest.fixture(scope="module")
def tiny_run(fmnist_tiny, tmp_path_factory):
    """The tiny config trained for its 2 epochs (8 iterations), with hooks recording each iteration."""
    work = tmp_path_factory.mktemp("byol") / "whole"
    runner = EpochRunner(load_config(TINY), fmnist_tiny, str(work))
    snap, after = _Snapshot(), _After()
    runner.hooks = sorted([*runner.hooks, snap, after], key=lambda h: get_priority(h.priority))
    runner.run()
    return work, runner.max_iters, snap.seen, after.targets


def test_in_training_the_hook_sets_the_cosine_momentum_each_iteration_and_moves_the_target_after_the_step(
        tiny_run):
    _, total, seen, targets_after = tiny_run
    assert [k for k, *_ in seen] == list(range(total)) and total == 8
    for (k, m, target, online), target_after in zip(seen, targets_after):
        assert m == pytest.approx(seed_momentum(0.99, k, total), abs=1e-12)
        for t_new, t_old, o in zip(target_after, target, online):
            torch.testing.assert_close(t_new, m * t_old + (1 - m) * o, rtol=0, atol=1e-6)
    assert seen[0][1] == pytest.approx(0.99)  # first iteration: the base momentum
    assert seen[-1][1] == pytest.approx(1 - 0.01 * (math.cos(math.pi * 7 / 8) + 1) / 2)


def test_resume_from_a_checkpoint_matches_the_uninterrupted_run_and_extract_gives_its_backbone(tiny_run, fmnist_tiny,
                                                                                               tmp_path):
    whole_dir = tiny_run[0]
    (tmp_path / "resumed").mkdir()
    shutil.copy(whole_dir / "epoch_1.pth", tmp_path / "resumed" / "epoch_1.pth")
    train(TINY, fmnist_tiny, str(tmp_path / "resumed"))
    whole = load_checkpoint(str(whole_dir / "epoch_2.pth"))
    resumed = load_checkpoint(str(tmp_path / "resumed" / "epoch_2.pth"))
    assert resumed["meta"]["iter"] == whole["meta"]["iter"] == 8
    assert any(k.startswith("target_net.") for k in whole["state_dict"])
    for key, value in whole["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][key], value, msg=key)
    extract(str(tmp_path / "resumed"), str(tmp_path / "backbone"))
    weights = torch.load(tmp_path / "backbone" / "backbone.pth", weights_only=True)
    backbone = {k.removeprefix("backbone."): v for k, v in resumed["state_dict"].items() if k.startswith("backbone.")}
    assert weights.keys() == backbone.keys()
    for key, value in backbone.items():
        torch.testing.assert_close(weights[key], value)


def test_a_predictor_that_does_not_read_the_projectors_width_is_named_at_build_time():
    cfg = load_config(TINY)
    cfg.model.head.predictor.in_channels = 32
    with pytest.raises(ConfigError, match=r"model.head.predictor.in_channels=32 does not match the neck's output "
                                          r"width 16; set model.head.predictor.in_channels=16"):
        build_algorithm(cfg.model)


def test_byol_refuses_a_pipeline_that_does_not_give_two_views():
    _, model = tiny_byol()
    with pytest.raises(ConfigError, match=r"BYOL needs 2 views per sample, the pipeline gives 3"):
        model.check_data(num_samples=64, global_batch=16, num_views=3)
    model.check_data(num_samples=64, global_batch=16, num_views=2)


@pytest.mark.parametrize("config", IN1K)
def test_the_seeds_imagenet_recipe_loads_and_builds(config):
    cfg = load_config(config)
    model = build_algorithm(cfg.model)
    assert type(model).__name__ == "BYOL" and model.base_momentum == 0.99
    assert cfg.optimizer.type == "LARS" and cfg.optimizer.lr == 4.8 and cfg.optimizer_config.update_interval == 16
    assert cfg.custom_hooks == [dict(type="MomentumUpdateHook", end_momentum=1.0, update_interval=16)]
    assert cfg.data.train.num_views == [1, 1] and len(cfg.data.train.pipelines) == 2
    assert [t["p"] for p in cfg.data.train.pipelines for t in p if t["type"] in ("GaussianBlur", "Solarization")] \
        == [1.0, 0.0, 0.1, 0.2]
