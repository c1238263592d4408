"""The seed's optimizer_config (grad_clip, update_interval, frozen_layers_cfg) and fp16 settings."""
from __future__ import annotations

import pytest
import torch

from conftest import TINY_CONFIG
from ssl_lib.engine.optimizer import OptimizerStep
from ssl_lib.errors import ConfigError

CPU = torch.device("cpu")


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))


def _loss(model, x, y):
    return ((model(x).squeeze(1) - y) ** 2).mean()


def test_accumulating_two_half_batches_equals_one_whole_batch():
    x, y = torch.randn(8, 6), torch.randn(8)
    whole, halves = _model(), _model()
    opt_w = torch.optim.SGD(whole.parameters(), lr=0.1, momentum=0.9)
    opt_h = torch.optim.SGD(halves.parameters(), lr=0.1, momentum=0.9)
    step_w = OptimizerStep(opt_w, whole, CPU)
    step_h = OptimizerStep(opt_h, halves, CPU, dict(type="DistOptimizerHook", update_interval=2))
    for it in range(3):
        assert step_w(_loss(whole, x, y), it)
        assert not step_h(_loss(halves, x[:4], y[:4]), 2 * it)  # gradients kept, no update yet
        assert step_h(_loss(halves, x[4:], y[4:]), 2 * it + 1)
    for a, b in zip(whole.parameters(), halves.parameters()):
        torch.testing.assert_close(a, b)


def test_grad_clip_bounds_the_update():
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    step = OptimizerStep(torch.optim.SGD(model.parameters(), lr=1.0), model, CPU,
                         dict(grad_clip=dict(max_norm=0.5, norm_type=2)))
    step(1e4 * _loss(model, torch.randn(4, 6), torch.randn(4)), 0)
    moved = torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before)])
    assert float(moved.norm()) == pytest.approx(0.5, rel=1e-4)


def test_frozen_layers_stay_put_for_their_iterations():
    model = _model()
    first = model[0].weight.detach().clone()
    step = OptimizerStep(torch.optim.SGD(model.parameters(), lr=0.1), model, CPU,
                         dict(frozen_layers_cfg={"0.": 2}))
    last = model[2].weight.detach().clone()
    for it in range(2):
        step(_loss(model, torch.randn(4, 6), torch.randn(4)), it)
    assert torch.equal(model[0].weight, first) and not torch.equal(model[2].weight, last)
    step(_loss(model, torch.randn(4, 6), torch.randn(4)), 2)
    assert not torch.equal(model[0].weight, first)


def test_fp16_scales_the_loss_and_bfloat16_does_not():
    model = _model()
    step = OptimizerStep(torch.optim.SGD(model.parameters(), lr=0.1), model, CPU, fp16=dict(loss_scale=512.))
    with step.autocast():
        assert model(torch.randn(2, 6)).dtype == torch.float16
    step(_loss(model, torch.randn(4, 6), torch.randn(4)), 0)
    assert step.state_dict()["scale"] == 512.0
    bf16 = OptimizerStep(torch.optim.SGD(model.parameters(), lr=0.1), model, CPU, fp16=dict(dtype="bfloat16"))
    with bf16.autocast():
        assert model(torch.randn(2, 6)).dtype == torch.bfloat16
    assert bf16.state_dict() == {}


@pytest.mark.parametrize("kwargs, message", [
    (dict(optimizer_config=dict(type="LarsHook")), "optimizer_config.type 'LarsHook' is not one of"),
    (dict(optimizer_config=dict(grad_clp=dict(max_norm=1))), r"unknown key\(s\) \['grad_clp'\]"),
    (dict(optimizer_config=dict(update_interval=0)), "update_interval must be >= 1, got 0"),
    (dict(fp16=dict(loss_scale=-1)), "loss_scale must be 'dynamic' or a positive number, got -1"),
    (dict(fp16=dict(dtype="float8")), "fp16.dtype must be 'float16' or 'bfloat16', got 'float8'"),
])
def test_bad_settings_are_config_errors_naming_them(kwargs, message):
    model = _model()
    with pytest.raises(ConfigError, match=message):
        OptimizerStep(torch.optim.SGD(model.parameters(), lr=0.1), model, CPU, **kwargs)


def test_mixed_precision_training_checkpoints_and_resumes_its_loss_scaler(fmnist_tiny, tmp_path):
    from ssl_lib.engine.train import train

    options = ["fp16={'loss_scale': 'dynamic'}", "optimizer_config={'update_interval': 2}"]
    metrics = train(TINY_CONFIG, fmnist_tiny, str(tmp_path), ["runner.max_epochs=1", *options])
    assert metrics["iterations"] == 4 and torch.isfinite(torch.tensor(metrics["final_loss"]))
    state = torch.load(tmp_path / "epoch_1.pth", weights_only=True)
    assert state["scaler"]["scale"] > 0
    resumed = train(TINY_CONFIG, fmnist_tiny, str(tmp_path), ["runner.max_epochs=2", *options])
    assert resumed["iterations"] == 8


def test_resume_restores_the_loss_scaler_exactly_as_saved(fmnist_tiny, tmp_path):
    import ssl_lib.data  # noqa: F401
    import ssl_lib.models  # noqa: F401
    from ssl_lib.config import load_config
    from ssl_lib.engine.runner import EpochRunner
    from ssl_lib.engine.train import train

    options = ["fp16={'loss_scale': 'dynamic'}", "runner.max_epochs=1"]
    train(TINY_CONFIG, fmnist_tiny, str(tmp_path), options)
    saved = torch.load(tmp_path / "epoch_1.pth", weights_only=True)["scaler"]
    assert saved["_growth_tracker"] == 4  # four steps without overflow: a fresh scaler would say 0
    runner = EpochRunner(load_config(TINY_CONFIG, ["fp16={'loss_scale': 'dynamic'}", "runner.max_epochs=2"]),
                         fmnist_tiny, str(tmp_path))
    runner.resume()
    assert runner.step.state_dict() == saved


def test_paramwise_options_set_and_multiply_per_parameter_as_the_seed_does():
    from ssl_lib.benchmarks.features import build_backbone
    from ssl_lib.engine.optimizer import build_optimizer

    model = build_backbone(dict(type="ResNet", depth=18, base_channels=8, stem="cifar"))
    opt = build_optimizer(dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4, paramwise_options={
        r"(bn|gn)(\d+)?.(weight|bias)": dict(weight_decay=0.), "bias": dict(weight_decay=0.),
        r"^layer4\.": dict(lr_mult=0.1)}), model)
    by_name = {name: group for (name, _), group in zip(model.named_parameters(), opt.param_groups)}
    assert by_name["bn1.weight"]["weight_decay"] == 0.0 and by_name["layer1.0.bn2.bias"]["weight_decay"] == 0.0
    assert by_name["conv1.weight"]["weight_decay"] == 1e-4 and by_name["conv1.weight"]["lr"] == 0.1
    assert by_name["layer4.0.conv1.weight"]["lr"] == pytest.approx(0.01)
    assert by_name["layer4.0.bn1.weight"]["lr"] == pytest.approx(0.01)
    assert by_name["layer4.0.bn1.weight"]["weight_decay"] == 0.0


def test_lars_scales_each_step_by_its_trust_ratio_and_excluded_groups_take_sgd_steps():
    from ssl_lib.engine.optimizer import LARS

    w, b = torch.nn.Parameter(torch.tensor([3.0, 4.0])), torch.nn.Parameter(torch.tensor([1.0]))
    w.grad, b.grad = torch.tensor([0.6, 0.8]), torch.tensor([0.5])
    opt = LARS([dict(params=[w]), dict(params=[b], lars_exclude=True)], lr=0.1, weight_decay=0.01, eta=0.02)
    opt.step()
    # |w| = 5, |g| = 1: trust = 0.02 * 5 / (1 + 0.01 * 5) = 0.0952...
    trust = 0.02 * 5 / (1 + 0.01 * 5 + 1e-8)
    expected = torch.tensor([3.0, 4.0]) - 0.1 * trust * (torch.tensor([0.6, 0.8]) + 0.01 * torch.tensor([3.0, 4.0]))
    torch.testing.assert_close(w.detach(), expected)
    torch.testing.assert_close(b.detach(), torch.tensor([1.0 - 0.1 * (0.5 + 0.01)]))


@pytest.mark.parametrize("cfg, message", [
    (dict(type="Adamm", lr=0.1), "optimizer.type 'Adamm' is neither a torch.optim optimizer nor one of"),
    (dict(type="SGD", lr=0.1, momentun=0.9), "optimizer SGD: .*momentun"),
    (dict(type="SGD", lr=0.1, paramwise_options={"bias": dict(decay_mult=0.)}), r"decay_mult needs optimizer\.decay"),
])
def test_bad_optimizer_configs_are_config_errors_naming_them(cfg, message):
    from ssl_lib.engine.optimizer import build_optimizer

    with pytest.raises(ConfigError, match=message):
        build_optimizer(cfg, _model())


def test_training_with_lars_and_paramwise_options_follows_the_lr_schedule_per_group(fmnist_tiny, tmp_path):
    from ssl_lib.engine.train import train

    option = ("optimizer={'type': 'LARS', 'lr': 0.3, 'paramwise_options': "
              "{'bias': {'lars_exclude': True, 'weight_decay': 0.0}, 'neck': {'lr_mult': 0.5}}}")
    metrics = train(TINY_CONFIG, fmnist_tiny, str(tmp_path), ["runner.max_epochs=1", option])
    assert torch.isfinite(torch.tensor(metrics["final_loss"]))
    groups = torch.load(tmp_path / "epoch_1.pth", weights_only=True)["optimizer"]["param_groups"]
    # the schedule scales every group's own base: the neck's lr is half the others', all below the base
    lrs = sorted({round(g["lr"], 12) for g in groups})
    assert len(lrs) == 2 and lrs[0] == pytest.approx(lrs[1] / 2) and lrs[1] < 0.3
    assert any(g["lars_exclude"] and g["weight_decay"] == 0.0 for g in groups)
