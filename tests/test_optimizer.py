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
