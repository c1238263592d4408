"""SwAV: the multi-crop forward, the neck, the head's codes and loss (one process and two), the queue
hook, the prototype freeze, and a train -> resume -> extract round trip on the tiny config."""
from __future__ import annotations

import copy
import logging
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from swav_dist_loss import global_case, head_input, make_head
from ssl_lib.config import load_config
from ssl_lib.engine.hooks import SwAVHook
from ssl_lib.engine.optimizer import OptimizerStep, build_optimizer
from ssl_lib.engine.runner import EpochRunner
from ssl_lib.engine.train import train
from ssl_lib.errors import ConfigError
from ssl_lib.models import SwAVHead, SwAVNeck, build_algorithm
from ssl_lib.models.losses import sinkhorn
from ssl_lib.stages.extract import extract

TESTS = Path(__file__).parent
TINY = str(TESTS / "configs" / "swav_resnet18-w8_1xb16-mcrop-2-4-coslr-2e_fmnist.py")
CPU_RECIPE = "selfsup/swav/swav_resnet18-w16_1xb64-mcrop-2-4-coslr-10e_fmnist.py"
IN1K = "selfsup/swav/swav_resnet50_8xb32-mcrop-2-6-coslr-200e_in1k-224-96.py"


def multi_crop(batch: int = 16, sizes=(28, 28, 16, 16, 16, 16)) -> list[torch.Tensor]:
    return [torch.randn(batch, 3, s, s) for s in sizes]


def fake_runner(head: SwAVHead, batch_size: int, world_size: int = 1) -> SimpleNamespace:
    return SimpleNamespace(algorithm=SimpleNamespace(head=head), batch_size=batch_size, world_size=world_size,
                           device=torch.device("cpu"), log=logging.getLogger("test"), epoch=0)


def reference_loss(x: np.ndarray, prototypes: np.ndarray, num_crops: list[int], crops_for_assign: list[int],
                   queue: np.ndarray | None = None, eps: float = 0.05, temp: float = 0.1, iters: int = 3) -> float:
    """The seed's SwAVHead.forward and distributed_sinkhorn, written out in float64 numpy."""
    w = prototypes / np.linalg.norm(prototypes, axis=1, keepdims=True)
    scores = x @ w.T
    n = sum(num_crops)
    bs = x.shape[0] // n
    loss = 0.0
    for i, c in enumerate(crops_for_assign):
        out = scores[bs * c:bs * (c + 1)]
        if queue is not None:
            out = np.concatenate([queue[i] @ w.T, out])
        q = np.exp(out / eps).T
        k, b = q.shape
        q /= q.sum()
        for _ in range(iters):
            q /= q.sum(axis=1, keepdims=True)
            q /= k
            q /= q.sum(axis=0, keepdims=True)
            q /= b
        q = (q * b).T[-bs:]
        sub = 0.0
        for v in range(n):
            if v != c:
                logits = scores[bs * v:bs * (v + 1)] / temp
                log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
                sub -= (q * log_p).sum(axis=1).mean()
        loss += sub / (n - 1)
    return loss / len(crops_for_assign)


# -- algorithm ---------------------------------------------------------------------------------------------
def test_tiny_config_trains_two_steps_with_a_finite_loss_and_every_parameter_getting_a_gradient():
    torch.manual_seed(0)
    model = build_algorithm(load_config(TINY).model).train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    for _ in range(2):  # zero_init_residual: the residual branches get gradients from the second step on
        out = model(multi_crop(), mode="train")
        assert torch.isfinite(out["loss"])
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not no_grad


def test_backbone_runs_once_per_run_of_same_size_crops_in_crop_order():
    model = build_algorithm(load_config(TINY).model).train()
    calls = []
    model.backbone.register_forward_hook(lambda m, inp, out: calls.append(tuple(inp[0].shape[::2])))
    model(multi_crop(batch=4, sizes=(28, 28, 16, 16, 16, 16)))
    assert calls == [(8, 28), (16, 16)]
    calls.clear()
    model.head.num_crops = [1, 1, 1]
    model(multi_crop(batch=4, sizes=(28, 16, 28)))
    assert calls == [(4, 28), (4, 16), (4, 28)]  # consecutive runs only, as the seed's unique_consecutive


def test_view_count_other_than_the_heads_num_crops_is_a_config_error_before_training(fmnist_tiny, tmp_path):
    model = build_algorithm(load_config(TINY).model)
    model.check_data(num_samples=64, global_batch=16, num_views=6)
    with pytest.raises(ConfigError, match=r"data.train.num_views gives 5 views per sample but "
                                          r"model.head.num_crops=\[2, 4\] sums to 6"):
        model.check_data(num_samples=64, global_batch=16, num_views=5)
    with pytest.raises(ConfigError, match=r"gives 4 views .* model.head.num_crops=\[2, 4\] sums to 6"):
        train(TINY, fmnist_tiny, str(tmp_path / "work"), ["data.train.num_views=[2,2]"])
    assert not list((tmp_path / "work").glob("*.pth"))


def test_bad_head_and_hook_settings_are_config_errors_naming_the_field():
    with pytest.raises(ConfigError, match=r"crops_for_assign=\[0, 3\] must name crops in 0..2"):
        SwAVHead(feat_dim=4, num_crops=[2, 1], crops_for_assign=[0, 3])
    head = SwAVHead(feat_dim=4, num_crops=[2], num_prototypes=3)
    with pytest.raises(ConfigError, match=r"SwAVHook.batch_size=8 but data.samples_per_gpu=16"):
        SwAVHook(batch_size=8, feat_dim=4).before_run(fake_runner(head, 16))
    with pytest.raises(ConfigError, match=r"SwAVHook.feat_dim=128 but model.head.feat_dim=4"):
        SwAVHook(batch_size=16).before_run(fake_runner(head, 16))
    with pytest.raises(ConfigError, match=r"SwAVHook.crops_for_assign=\[0\] differs"):
        SwAVHook(batch_size=16, feat_dim=4, crops_for_assign=[0]).before_run(fake_runner(head, 16))


# -- neck ----------------------------------------------------------------------------------------------------
def test_neck_pools_each_group_concatenates_in_crop_order_projects_and_l2_normalises():
    neck = SwAVNeck(in_channels=2, hid_channels=0, out_channels=2, norm_cfg=dict(type="BN"))
    with torch.no_grad():
        neck.projection_neck.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        neck.projection_neck.bias.zero_()
    big = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1).expand(2, 2, 4, 4).clone()  # 2 crops pooled to (3, 4)
    big[1] *= -1
    small = torch.zeros(1, 2, 2, 2)
    small[0, 0] = torch.tensor([[0.0, 2.0], [2.0, 4.0]])  # pooled to (2, 0)
    (z,) = neck([(big,), (small,)])
    r = math.sqrt(9 + 64)
    torch.testing.assert_close(z, torch.tensor([[3 / r, 8 / r], [-3 / r, -8 / r], [1.0, 0.0]]))
    neck.with_l2norm = False
    torch.testing.assert_close(neck([(big,), (small,)])[0], torch.tensor([[3.0, 8.0], [-3.0, -8.0], [2.0, 0.0]]))


def test_neck_and_head_parameter_names_are_the_seeds():
    model = build_algorithm(load_config(IN1K).model)
    names = [k for k in model.state_dict() if not k.startswith("backbone.")]
    bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert names == ([f"neck.bn.{s}" for s in bn] + ["neck.projection_neck.0.weight", "neck.projection_neck.0.bias"]
                     + [f"neck.projection_neck.1.{s}" for s in bn]
                     + ["neck.projection_neck.3.weight", "neck.projection_neck.3.bias", "head.prototypes.weight"])
    assert model.neck.bn is model.neck.projection_neck[1]


# -- head ------------------------------------------------------------------------------------------------------
def test_head_loss_on_two_crops_matches_the_closed_form():
    # two samples on the two (identity) prototypes, both crops alike; at epsilon 0.5 the codes are
    # [[a, 1-a], [1-a, a]] with a = e^2 / (e^2 + 1), and at temperature 1 each prediction has logits (1, 0)
    # or (0, 1): loss = a log(1 + e^-1) + (1 - a)(1 + log(1 + e^-1))
    head = SwAVHead(feat_dim=2, num_crops=[2], num_prototypes=2, epsilon=0.5, temperature=1.0)
    with torch.no_grad():
        head.prototypes.weight.copy_(torch.eye(2) * 3)  # normalised by the head
    x = torch.eye(2).repeat(2, 1)
    expected = math.log1p(math.exp(-1)) + 1 / (math.exp(2) + 1)
    assert head(x)["loss"].item() == pytest.approx(expected, rel=1e-6)
    torch.testing.assert_close(head.prototypes.weight, torch.eye(2))


def test_head_loss_matches_the_seeds_formula_over_every_other_crop():
    torch.manual_seed(0)
    head = SwAVHead(feat_dim=5, num_crops=[2, 3], crops_for_assign=[0, 1], num_prototypes=7)
    w = head.prototypes.weight.detach().double().numpy().copy()
    x = F.normalize(torch.randn(5 * 4, 5), dim=1)
    got = head(x)["loss"].item()
    assert got == pytest.approx(reference_loss(x.double().numpy(), w, [2, 3], [0, 1]), rel=1e-4)


def test_head_fills_the_queue_newest_first_and_uses_it_only_once_full():
    torch.manual_seed(0)
    head = SwAVHead(feat_dim=4, num_crops=[2, 1], num_prototypes=5)
    batches = [F.normalize(torch.randn(3 * 2, 4), dim=1) for _ in range(3)]
    head.queue = torch.zeros(2, 4, 4)  # two batches of 2 per assigned crop
    plain = copy.deepcopy(head)
    plain.queue = None
    for x in batches[:2]:  # filling: codes from the batch alone
        assert head(x)["loss"].item() == pytest.approx(plain(x)["loss"].item(), rel=1e-6)
        assert not head.use_queue
    for i in (0, 1):
        torch.testing.assert_close(head.queue[i], torch.cat([batches[1][2 * i:2 * i + 2], batches[0][2 * i:2 * i + 2]]))
    queue = head.queue.clone().numpy()
    w = head.prototypes.weight.detach().numpy().copy()
    loss = head(batches[2])["loss"].item()
    assert head.use_queue
    assert loss == pytest.approx(reference_loss(batches[2].double().numpy(), w, [2, 1], [0, 1], queue), rel=1e-4)
    assert loss != pytest.approx(plain(batches[2])["loss"].item(), rel=1e-3)


def test_two_process_loss_with_distributed_sinkhorn_equals_one_process_loss_on_the_global_batch(tmp_path):
    repo = TESTS.parent
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(TESTS / "swav_dist_loss.py"), str(tmp_path)]
    proc = subprocess.run(cmd, env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(repo)),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    x, queues = global_case()
    for with_queue in (False, True):
        head = make_head()
        head.queue = torch.cat(list(queues), dim=1) if with_queue else None  # both ranks' queues
        one = head(head_input(x))["loss"].item()
        per_rank = [r[with_queue] for r in ranks]
        assert per_rank[0] != pytest.approx(per_rank[1], rel=1e-3)  # the ranks hold different samples
        assert sum(per_rank) / 2 == pytest.approx(one, rel=1e-5)


def test_sinkhorn_codes_of_a_split_batch_need_the_sum_over_both_halves():
    # what the two-process test guards, in one process: each half normalised alone gives other codes
    torch.manual_seed(0)
    scores = F.normalize(torch.randn(8, 4), dim=1) @ F.normalize(torch.randn(4, 4), dim=1).T
    whole = sinkhorn(scores, 0.05, 3)
    halves = torch.cat([sinkhorn(scores[:4], 0.05, 3), sinkhorn(scores[4:], 0.05, 3)])
    assert not torch.allclose(whole, halves, atol=1e-3)


# -- hook and prototype freeze ------------------------------------------------------------------------------
def test_hook_gives_the_head_no_queue_before_epoch_queue_starts_and_a_zero_queue_from_it_on():
    head = SwAVHead(feat_dim=4, num_crops=[2, 1], num_prototypes=5)
    hook = SwAVHook(batch_size=2, epoch_queue_starts=2, feat_dim=4, queue_length=10)
    runner = fake_runner(head, batch_size=2, world_size=2)
    hook.before_run(runner)
    assert hook.queue_length == 8  # trimmed to a multiple of the global batch 2 x 2, as the seed does
    for epoch in (0, 1):
        runner.epoch = epoch
        hook.before_train_epoch(runner)
        assert head.queue is None
        head(F.normalize(torch.randn(6, 4), dim=1))
        assert not head.use_queue
        hook.after_train_epoch(runner)
    runner.epoch = 2
    hook.before_train_epoch(runner)
    assert head.queue.shape == (2, 4, 4) and not head.queue.any()  # 8 over 2 processes, per assigned crop
    for _ in range(2):
        head(F.normalize(torch.randn(6, 4), dim=1))
    assert not head.use_queue
    head(F.normalize(torch.randn(6, 4), dim=1))
    assert head.use_queue
    hook.after_train_epoch(runner)
    runner.epoch = 3
    hook.before_train_epoch(runner)
    assert head.queue is hook.queue and not head.use_queue  # kept, and re-checked for fullness each epoch
    assert hook.state_dict()["queue"] is head.queue


def test_prototypes_stay_fixed_during_their_frozen_iterations_and_move_after():
    torch.manual_seed(0)
    cfg = load_config(TINY)
    model = build_algorithm(cfg.model).train()
    optimizer = build_optimizer(cfg.optimizer, model)
    step = OptimizerStep(optimizer, model, torch.device("cpu"), cfg.optimizer_config)
    assert cfg.optimizer_config.frozen_layers_cfg == {"head.prototypes": 2}
    start = F.normalize(model.head.prototypes.weight.detach(), dim=1)
    backbone = model.backbone.conv1.weight.detach().clone()
    for it in range(3):
        if it == 2:
            torch.testing.assert_close(model.head.prototypes.weight, start)
            assert not torch.equal(model.backbone.conv1.weight, backbone)  # the rest did train
        step(model(multi_crop())["loss"], it)
    assert (model.head.prototypes.weight - start).abs().max() > 1e-4


@pytest.mark.parametrize("recipe", [IN1K, CPU_RECIPE])
def test_recipes_freeze_keys_name_the_prototype_parameters(recipe):
    cfg = load_config(recipe)
    names = [n for n, _ in build_algorithm(cfg.model).named_parameters()]
    for prefix in cfg.optimizer_config.frozen_layers_cfg:
        assert [n for n in names if n.startswith(prefix)] == ["head.prototypes.weight"]


# -- training runs -------------------------------------------------------------------------------------------
def test_queue_is_saved_with_the_checkpoint_and_restored_on_resume(fmnist_tiny, tmp_path):
    whole = tmp_path / "whole"
    train(TINY, fmnist_tiny, str(whole), ["runner.max_epochs=3"])
    states = {e: torch.load(whole / f"epoch_{e}.pth", weights_only=True) for e in (1, 2, 3)}
    cfg = load_config(TINY, ["runner.max_epochs=3", f"resume_from={whole / 'epoch_2.pth'}"])
    runner = EpochRunner(cfg, fmnist_tiny, str(tmp_path / "resumed"))
    slot = [type(h) for h in runner.hooks].index(SwAVHook)
    assert states[1]["hooks"][0][slot]["queue"] is None  # epoch 0 ran before epoch_queue_starts=1
    saved = states[2]["hooks"][0][slot]["queue"]
    assert saved.shape == (2, 32, 16) and saved[:, -1].abs().sum(1).gt(0).all()  # full after epoch 1

    runner.resume()
    assert torch.equal(runner.hooks[slot].queue, saved)
    runner.run()
    ref, got = states[3]["state_dict"], torch.load(tmp_path / "resumed" / "epoch_3.pth", weights_only=True)
    for key in ref:
        assert torch.equal(ref[key], got["state_dict"][key]), f"{key} differs from the uninterrupted run"
    assert torch.equal(got["hooks"][0][slot]["queue"], states[3]["hooks"][0][slot]["queue"])

    info = extract(str(tmp_path / "resumed"), str(tmp_path / "extracted"))
    weights = torch.load(tmp_path / "extracted" / "backbone.pth", weights_only=True)
    assert info["algorithm"] == "SwAV"
    torch.testing.assert_close(weights["conv1.weight"], ref["backbone.conv1.weight"])


@pytest.mark.parametrize("recipe", [IN1K])
def test_imagenet_recipe_loads_and_builds_with_the_seeds_settings(recipe):
    cfg = load_config(recipe)
    model = build_algorithm(cfg.model)
    assert type(model).__name__ == "SwAV" and model.neck.in_channels == 2048
    head = model.head
    assert head.num_crops == [2, 6] and head.crops_for_assign == [0, 1] and head.prototypes.weight.shape == (3000, 128)
    assert (head.epsilon, head.temperature, head.sinkhorn_iterations) == (0.05, 0.1, 3)
    assert cfg.data.train.num_views == [2, 6] and cfg.data.samples_per_gpu == 32
    sizes = [(p[0]["size"], p[0]["scale"]) for p in cfg.data.train.pipelines]
    assert sizes == [(224, (0.14, 1.0)), (96, (0.05, 0.14))]
    assert cfg.optimizer == dict(type="LARS", lr=0.6, weight_decay=1e-6, momentum=0.9)
    assert cfg.lr_config == dict(policy="CosineAnnealing", min_lr=6e-4)
    (hook,) = cfg.custom_hooks
    assert hook == dict(type="SwAVHook", priority="VERY_HIGH", batch_size=32, epoch_queue_starts=15,
                        crops_for_assign=[0, 1], feat_dim=128, queue_length=3840)
    assert cfg.optimizer_config.frozen_layers_cfg == {"head.prototypes": 5005} and cfg.runner.max_epochs == 200
