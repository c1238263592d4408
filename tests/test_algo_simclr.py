"""SimCLR: the seed's NonLinearNeck, the loss against the seed's own formulation, the loss and its
gradients over two ranks against one process, the seed's recipe, and a train -> resume -> extract
round trip on the tiny config."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ssl_lib.config import load_config
from ssl_lib.engine.train import train
from ssl_lib.errors import ConfigError
from ssl_lib.models import ContrastiveHead, NonLinearNeck, build_algorithm
from ssl_lib.models.utils import revert_sync_batchnorm
from ssl_lib.registry import ALGORITHMS, build
from ssl_lib.stages.extract import extract

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "tests" / "configs" / "simclr_resnet18-w8_1xb16-coslr-2e_fmnist.py")
IN1K = "selfsup/simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py"


def tiny_cfg(**overrides) -> dict:
    cfg = dict(
        type="SimCLR",
        backbone=dict(type="ResNet", depth=18, base_channels=8, stem="cifar"),
        neck=dict(type="NonLinearNeck", in_channels=64, hid_channels=32, out_channels=16, norm_cfg=dict(type="BN")),
        head=dict(type="ContrastiveHead", temperature=0.1))
    cfg.update(overrides)
    return cfg


def two_views(batch: int, size: int) -> list[torch.Tensor]:
    x = torch.randn(batch, 3, size, size)
    return [x + 0.1 * torch.randn_like(x), x + 0.1 * torch.randn_like(x)]


def torchrun(script: str, algo: str, out_dir: Path) -> list[dict]:
    """Run a tests/ script on two CPU processes (gloo); the JSON report each rank writes to out_dir."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(REPO / "tests" / script), algo, str(out_dir)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    reports = [json.loads(p.read_text()) for p in sorted(out_dir.glob("rank*.json"))]
    assert proc.returncode == 0, (reports, proc.stderr[-3000:])
    return reports


def test_tiny_config_trains_two_steps_with_every_parameter_getting_a_gradient():
    torch.manual_seed(0)
    model = build_algorithm(load_config(TINY).model).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    views, grads = two_views(16, 28), set()
    for _ in range(2):
        loss = model(views, mode="train")["loss"]
        assert torch.isfinite(loss) and loss > 0
        opt.zero_grad()
        loss.backward()
        grads.update(n for n, p in model.named_parameters() if p.grad is not None and p.grad.any())
        opt.step()
    assert grads == {n for n, _ in model.named_parameters()}


def test_loss_equals_the_seeds_formulation_over_interleaved_views_with_the_diagonal_removed():
    # the seed: views interleaved (x1_v1, x1_v2, x2_v1, ...), s = z z^T without its diagonal, the positive
    # of row 2i is 2i+1 and vice versa, ContrastiveHead's cross-entropy over [positive, 2N - 2 negatives]
    torch.manual_seed(0)
    model = build(tiny_cfg(), ALGORITHMS).train()
    calls = []
    model.neck.register_forward_hook(lambda mod, args, out: calls.append(out[0].detach()))
    views = two_views(6, 16)
    loss = model(views)["loss"]
    n = 6
    assert [tuple(z.shape) for z in calls] == [(2 * n, 16)]  # both views in one batch: BN sees all 2N images
    seen = {"z": calls[0]}
    z = F.normalize(seen["z"], dim=1)
    z = torch.stack([z[:n], z[n:]], dim=1).reshape(2 * n, -1)  # interleaved as the seed orders it
    s = z @ z.T
    s = s[~torch.eye(2 * n, dtype=torch.bool)].view(2 * n, 2 * n - 1)
    pos_col = 2 * (torch.arange(2 * n) // 2)  # the partner's column once the diagonal is gone (the seed's pos_ind)
    positive = s[torch.arange(2 * n), pos_col].unsqueeze(1)
    keep = torch.ones_like(s, dtype=torch.bool)
    keep[torch.arange(2 * n), pos_col] = False
    negative = s[keep].view(2 * n, 2 * n - 2)
    torch.testing.assert_close(loss, ContrastiveHead(temperature=0.1)(positive, negative)["loss"])


def test_two_ranks_give_the_one_process_loss_and_gradients_over_the_global_batch(tmp_path):
    reports = torchrun("ddp_gathered_loss.py", "SimCLR", tmp_path)
    assert sorted(r["rank"] for r in reports) == [0, 1]
    for r in reports:
        assert r["loss_dist"] == pytest.approx(r["loss_one"], rel=1e-5)
        assert r["grad_diff"] <= 1e-4 * r["grad_scale"] and r["param_diff"] <= 1e-4 * r["param_scale"]


def test_nonlinear_neck_computes_fc_bn_relu_fc_bn_with_the_seeds_parameter_names():
    neck = NonLinearNeck(in_channels=2, hid_channels=2, out_channels=1, norm_cfg=dict(type="BN"))
    with torch.no_grad():
        neck.fc0.weight.copy_(torch.tensor([[1.0, 0.0], [1.0, -1.0]]))
        neck.fc1.weight.copy_(torch.tensor([[1.0, 2.0]]))
    x = torch.tensor([[[[2.0]], [[0.0]]], [[[0.0]], [[2.0]]], [[[4.0]], [[1.0]]]])  # 3 samples, 2 channels, 1x1
    (out,) = neck.train()((x,))
    # fc0: (2, 2), (0, -2), (4, 3); bn0 (batch stats, biased var): column 0 mean 2 var 8/3, column 1 mean 1 var 14/3
    h = [[(2 - 2) / math.sqrt(8 / 3 + 1e-5), (2 - 1) / math.sqrt(14 / 3 + 1e-5)],
         [(0 - 2) / math.sqrt(8 / 3 + 1e-5), (-2 - 1) / math.sqrt(14 / 3 + 1e-5)],
         [(4 - 2) / math.sqrt(8 / 3 + 1e-5), (3 - 1) / math.sqrt(14 / 3 + 1e-5)]]
    f = [max(a, 0) + 2 * max(b, 0) for a, b in h]  # relu, fc1
    mean = sum(f) / 3
    var = sum((v - mean) ** 2 for v in f) / 3
    expected = torch.tensor([[(v - mean) / math.sqrt(var + 1e-5)] for v in f])
    torch.testing.assert_close(out, expected)
    assert set(neck.state_dict()) == {
        "fc0.weight", "fc1.weight", *(f"bn{i}.{k}" for i in (0, 1)
                                      for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"))}


def test_nonlinear_neck_options_follow_the_seed():
    three = NonLinearNeck(8, 16, 4, num_layers=3, with_bias=True, with_last_bn=False, with_last_bias=True,
                          with_avg_pool=False, norm_cfg=dict(type="BN"))
    assert [n for n, _ in three.named_parameters()] == [
        "fc0.weight", "fc0.bias", "bn0.weight", "bn0.bias", "fc1.weight", "fc1.bias", "bn1.weight", "bn1.bias",
        "fc2.weight", "fc2.bias"]
    assert three((torch.randn(5, 8),))[0].shape == (5, 4) and three.out_channels == 4
    simsiam = NonLinearNeck(8, 16, 4, num_layers=3, with_last_bn_affine=False)
    assert not simsiam.bn2.affine and simsiam.bn1.affine and isinstance(simsiam.bn2, nn.SyncBatchNorm)
    assert NonLinearNeck(8, 16, 4, num_layers=1).out_channels == 16  # the seed's fc0 always gives hid_channels


def test_nonlinear_neck_kaiming_init_is_mmcvs_uniform_fan_out_relu_with_zero_bias():
    torch.manual_seed(0)
    neck = NonLinearNeck(64, 256, 128, num_layers=3, with_bias=True,
                         init_cfg=dict(type="Kaiming", distribution="uniform", layer=["Linear"]))
    for fc, fan_out in ((neck.fc0, 256), (neck.fc1, 256), (neck.fc2, 128)):
        bound = math.sqrt(6 / fan_out)  # gain sqrt(2) * sqrt(3 / fan_out)
        assert 0.95 * bound < fc.weight.abs().max().item() <= bound
    assert neck.fc0.bias.abs().sum() == 0 and neck.fc1.bias.abs().sum() == 0
    with pytest.raises(ConfigError, match=r"init_cfg .*'Xavier'.* is not supported"):
        NonLinearNeck(8, 8, 8, init_cfg=dict(type="Xavier", layer="Linear"))


def test_a_reverted_syncbn_neck_takes_the_vectors_it_normalises():
    # the runner turns SyncBN into plain BN on CPU process groups; a neck's BN sees [N, C], not [N, C, H, W]
    neck = revert_sync_batchnorm(NonLinearNeck(8, 16, 4))
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in neck.modules())
    assert neck.train()((torch.randn(4, 8, 2, 2),))[0].shape == (4, 4)


def test_bad_inputs_are_config_errors_naming_the_field():
    model = build(tiny_cfg(), ALGORITHMS)
    with pytest.raises(ConfigError, match=r"SimCLR needs 2 views per sample, the pipeline gives 3"):
        model.check_data(num_samples=64, global_batch=8, num_views=3)
    with pytest.raises(ConfigError, match=r"global batch of 1 has none; set data.samples_per_gpu"):
        model.check_data(num_samples=64, global_batch=1, num_views=2)
    with pytest.raises(ConfigError, match=r"SimCLR takes its temperature from model.head; LatentPredictHead"):
        build(tiny_cfg(head=dict(type="LatentPredictHead", predictor=dict(
            type="NonLinearNeck", in_channels=16, hid_channels=8, out_channels=16, with_avg_pool=False))), ALGORITHMS)
    with pytest.raises(ConfigError, match=r"norm_cfg type 'GN' is not one of BN, SyncBN"):
        NonLinearNeck(8, 8, 8, norm_cfg=dict(type="GN"))


def test_train_resume_and_extract_on_the_tiny_config(fmnist_tiny, tmp_path):
    work = tmp_path / "work"
    first = train(TINY, fmnist_tiny, str(work), ["runner.max_epochs=1"])
    assert first["iterations"] == 4
    resumed = train(TINY, fmnist_tiny, str(work))
    assert resumed["iterations"] == 8 and math.isfinite(resumed["final_loss"])
    state = torch.load(work / "epoch_2.pth", weights_only=True)["state_dict"]
    assert {"neck.fc0.weight", "neck.bn1.running_mean"} <= set(state)
    info = extract(str(work), str(tmp_path / "extracted"))
    weights = torch.load(tmp_path / "extracted" / "backbone.pth", weights_only=True)
    assert info["algorithm"] == "SimCLR"
    torch.testing.assert_close(weights["conv1.weight"], state["backbone.conv1.weight"])


@pytest.mark.parametrize("recipe", [IN1K])
def test_imagenet_recipe_loads_and_builds_with_the_seeds_settings(recipe):
    cfg = load_config(recipe)
    model = build_algorithm(cfg.model)
    assert type(model).__name__ == "SimCLR" and model.head.temperature == 0.1
    assert (model.neck.fc0.weight.shape, model.neck.fc1.weight.shape) == ((2048, 2048), (128, 2048))
    assert isinstance(model.neck.bn1, nn.SyncBatchNorm) and isinstance(model.backbone.bn1, nn.SyncBatchNorm)
    opt = cfg.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ("LARS", 0.3, 0.9, 1e-6)
    assert opt.paramwise_options["bias"] == dict(weight_decay=0.0, lars_exclude=True)
    assert cfg.lr_config.warmup == "linear" and cfg.lr_config.warmup_iters == 10 and cfg.lr_config.warmup_by_epoch
    assert cfg.runner.max_epochs == 200 and cfg.data.samples_per_gpu == 32 and cfg.data.train.num_views == [2]
    jitter = cfg.data.train.pipelines[0][2]["transforms"][0]
    assert [jitter[k] for k in ("brightness", "contrast", "saturation", "hue")] == [0.8, 0.8, 0.8, 0.2]

    from ssl_lib.engine.optimizer import build_optimizer
    groups = build_optimizer(opt, model).param_groups
    excluded = {id(p) for g in groups if g["lars_exclude"] and g["weight_decay"] == 0 for p in g["params"]}
    named = dict(model.named_parameters())
    assert id(named["neck.bn0.weight"]) in excluded and id(named["backbone.layer1.0.bn1.bias"]) in excluded
    assert id(named["neck.fc0.weight"]) not in excluded and id(named["backbone.conv1.weight"]) not in excluded
