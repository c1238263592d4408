"""VICReg: the expander and the loss on the gathered embeddings, the recipes, train -> resume -> extract."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from ssl_lib.config import load_config
from ssl_lib.engine.checkpoint import load as load_checkpoint
from ssl_lib.engine.optimizer import build_optimizer
from ssl_lib.engine.runner import EpochRunner
from ssl_lib.engine.train import train
from ssl_lib.errors import ConfigError
from ssl_lib.models import build_algorithm
from ssl_lib.models.losses import vicreg
from ssl_lib.stages.extract import extract

TINY = str(Path(__file__).parent / "configs" / "vicreg_resnet18-w8_1xb16-coslr-2e_fmnist.py")
IN1K = "selfsup/vicreg/vicreg_resnet50_8xb64-coslr-100e_in1k.py"


def views(batch: int = 8) -> list[torch.Tensor]:
    x = torch.randn(batch, 3, 28, 28)
    return [x + 0.1 * torch.randn_like(x), x + 0.1 * torch.randn_like(x)]


def test_tiny_config_trains_two_steps_with_a_finite_loss_and_every_parameter_getting_a_gradient():
    torch.manual_seed(0)
    cfg = load_config(TINY)
    model = build_algorithm(cfg.model).train()
    optimizer = build_optimizer(cfg.optimizer, model)
    for _ in range(2):  # zero_init_residual: the residual branches get gradients from the second step on
        loss = model(views(), mode="train")["loss"]
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not no_grad


def test_loss_is_the_vicreg_function_of_the_two_views_expander_outputs():
    torch.manual_seed(0)
    model = build_algorithm(load_config(TINY).model).train()
    v1, v2 = views()
    state = {k: v.clone() for k, v in model.state_dict().items()}  # BN running stats move at each pass
    loss = model([v1, v2])["loss"]
    model.load_state_dict(state)
    with torch.no_grad():
        z1, z2 = model.neck(model.backbone(v1))[0], model.neck(model.backbone(v2))[0]
    assert z1.shape == (8, 32)
    torch.testing.assert_close(loss.detach(), vicreg(z1, z2, 25.0, 25.0, 1.0))


def test_expander_is_three_linear_layers_with_biases_and_no_norm_after_the_last():
    cfg = load_config(IN1K)
    model = build_algorithm(cfg.model)
    fcs = [(m.in_features, m.out_features, m.bias is not None)
           for n, m in model.neck.named_children() if n.startswith("fc")]
    assert fcs == [(2048, 8192, True), (8192, 8192, True), (8192, 8192, True)]
    assert sorted(n for n, _ in model.neck.named_children() if n.startswith("bn")) == ["bn0", "bn1"]
    assert (model.head.sim_coeff, model.head.std_coeff, model.head.cov_coeff) == (25.0, 25.0, 1.0)
    assert cfg.optimizer.type == "LARS" and cfg.optimizer.lr == 0.4 and cfg.optimizer.weight_decay == 1e-6
    assert cfg.data.samples_per_gpu == 64 and cfg.runner.max_epochs == 100 and cfg.data.train.num_views == [1, 1]
    assert cfg.lr_config.min_lr == pytest.approx(0.001 * 0.4) and cfg.lr_config.warmup_iters == 10


def test_a_head_that_does_not_read_the_expanders_width_and_a_batch_of_one_are_config_errors():
    cfg = load_config(TINY)
    cfg.model.head.in_channels = 64
    with pytest.raises(ConfigError, match=r"model.head.in_channels=64 does not match the neck's output width 32"):
        build_algorithm(cfg.model)
    model = build_algorithm(load_config(TINY).model)
    with pytest.raises(ConfigError, match=r"global batch of 1"):
        model.check_data(num_samples=64, global_batch=1, num_views=2)
    with pytest.raises(ConfigError, match=r"VICReg needs 2 views per sample, the pipeline gives 3"):
        model.check_data(num_samples=64, global_batch=16, num_views=3)


def test_resume_from_a_checkpoint_matches_the_uninterrupted_run_and_extract_gives_its_backbone(fmnist_tiny,
                                                                                               tmp_path):
    whole_dir = tmp_path / "whole"
    metrics = EpochRunner(load_config(TINY), fmnist_tiny, str(whole_dir)).run()
    assert metrics["iterations"] == 8 and torch.isfinite(torch.tensor(metrics["final_loss"]))
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
