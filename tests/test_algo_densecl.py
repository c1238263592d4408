"""DenseCL: the neck, the dense correspondence, both queues, the loss_lambda warm-up hook, and a
train -> resume -> extract round trip on the tiny config."""
from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from ssl_lib.config import load_config
from ssl_lib.engine.hooks import DenseCLHook
from ssl_lib.engine.train import train
from ssl_lib.errors import ConfigError
from ssl_lib.models import DenseCLNeck, build_algorithm
from ssl_lib.models.algorithms.densecl import dense_correspondence
from ssl_lib.models.losses import info_nce_from_logits
from ssl_lib.registry import ALGORITHMS, HOOKS, build
from ssl_lib.stages.extract import extract

TINY = str(Path(__file__).parent / "configs" / "densecl_resnet18-w8_1xb16-coslr-2e_fmnist.py")
IN1K = "selfsup/densecl/densecl_resnet50_8xb32-coslr-200e_in1k.py"


def tiny_cfg(**overrides) -> dict:
    """Plain BN (batch statistics do not depend on the order MoCo's shuffle puts the keys in)."""
    cfg = dict(
        type="DenseCL", queue_len=16, feat_dim=8, momentum=0.9, loss_lambda=0.3,
        backbone=dict(type="ResNet", depth=18, base_channels=8, stem="cifar"),
        neck=dict(type="DenseCLNeck", in_channels=64, hid_channels=16, out_channels=8),
        head=dict(type="ContrastiveHead", temperature=0.2))
    cfg.update(overrides)
    return cfg


def two_views(batch: int = 4, size: int = 16) -> list[torch.Tensor]:
    x = torch.randn(batch, 3, size, size)
    return [x + 0.1 * torch.randn_like(x), x + 0.1 * torch.randn_like(x)]


def test_tiny_config_trains_two_steps_with_every_parameter_getting_a_gradient_and_keys_following_by_momentum():
    torch.manual_seed(0)
    model = build_algorithm(load_config(TINY).model).train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    views = two_views(batch=16, size=28)
    out = model(views, mode="train")
    assert torch.isfinite(out["loss"]) and out["loss_dense"] > 0 and out["loss_single"] > 0
    opt.zero_grad()
    out["loss"].backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not no_grad
    assert all(p.grad is None and not p.requires_grad for p in model.encoder_k.parameters())
    opt.step()

    keys = [p.detach().clone() for p in model.encoder_k.parameters()]
    query = [p.detach().clone() for p in [*model.backbone.parameters(), *model.neck.parameters()]]
    assert torch.isfinite(model(views)["loss"])
    m = model.momentum
    for k_new, k_old, q in zip(model.encoder_k.parameters(), keys, query, strict=True):
        torch.testing.assert_close(k_new, m * k_old + (1 - m) * q)


def test_dense_correspondence_picks_the_key_position_of_highest_cosine_not_of_highest_dot_product():
    # one sample, 2 channels, 3 positions; columns are positions
    q = torch.tensor([[[1.0, 0.0, 1.0],
                       [0.0, 1.0, -1.0]]])
    k = torch.tensor([[[10.0, 1.0, 0.0],
                       [10.0, 0.1, -3.0]]])
    # q0=(1,0): cos with k0=(10,10) .71, k1=(1,.1) .995, k2=(0,-3) 0       -> 1 (a dot product would pick 0)
    # q1=(0,1): .71, .10, -1                                              -> 0
    # q2=(1,-1): 0, .64, .71                                              -> 2
    assert dense_correspondence(q, k).tolist() == [[1, 0, 2]]
    # each sample matches within its own pair of maps
    assert dense_correspondence(torch.cat([q, q]), torch.cat([k, k.flip(2)])).tolist() == [[1, 0, 2], [1, 2, 0]]


def test_densecl_neck_returns_the_global_vector_the_dense_grid_and_its_average():
    neck = DenseCLNeck(in_channels=2, hid_channels=2, out_channels=2)
    with torch.no_grad():  # identity weights: each MLP is a ReLU (the global one applied after pooling)
        for layer in (neck.mlp[0], neck.mlp[2]):
            layer.weight.copy_(torch.eye(2)), layer.bias.zero_()
        for layer in (neck.mlp2[0], neck.mlp2[2]):
            layer.weight.copy_(torch.eye(2).view(2, 2, 1, 1)), layer.bias.zero_()
    x = torch.tensor([[[[1.0, -3.0], [2.0, 4.0]],
                       [[-1.0, -1.0], [-2.0, 2.0]]]])  # [1, 2, 2, 2]
    global_vec, grid, pooled = neck((x,))
    torch.testing.assert_close(global_vec, torch.tensor([[1.0, 0.0]]))  # relu of the means (1, -0.5)
    torch.testing.assert_close(grid, torch.tensor([[[1.0, 0.0, 2.0, 4.0], [0.0, 0.0, 0.0, 2.0]]]))
    torch.testing.assert_close(pooled, torch.tensor([[1.75, 0.5]]))  # means of the relu'd grid
    _, grid1, _ = DenseCLNeck(2, 3, 4, num_grid=1)((x,))
    assert grid1.shape == (1, 4, 1)
    assert set(neck.state_dict()) == {"mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias",
                                      "mlp2.0.weight", "mlp2.0.bias", "mlp2.2.weight", "mlp2.2.bias"}


def test_losses_and_both_queues_after_a_step_match_a_hand_computation():
    torch.manual_seed(0)
    model = build(tiny_cfg(), ALGORITHMS).train()
    views = two_views(batch=4, size=16)  # 2x2 last feature map: 4 positions
    queue, queue2 = model.queue.clone(), model.queue2.clone()
    with torch.no_grad():
        out = model(views)
        # the forward's momentum update ran first; recompute everything with the updated key encoder
        q_map = model.backbone(views[0])[-1]
        q, q_grid, _ = model.neck((q_map,))
        k_map = model.encoder_k[0](views[1])[-1]
        k, k_grid, k2 = model.encoder_k[1]((k_map,))
    q, q_grid, k, k_grid, k2 = (F.normalize(t, dim=1) for t in (q, q_grid, k, k_grid, k2))
    single = info_nce_from_logits((q * k).sum(1, keepdim=True), q @ queue, 0.2)

    pos, neg = [], []
    for n in range(4):
        for s in range(4):
            cos = [F.cosine_similarity(q_map[n, :, s // 2, s % 2], k_map[n, :, t // 2, t % 2], dim=0) for t in range(4)]
            best = max(range(4), key=lambda t: cos[t])
            pos.append(q_grid[n, :, s] @ k_grid[n, :, best])
            neg.append(q_grid[n, :, s] @ queue2)
    dense = info_nce_from_logits(torch.stack(pos).view(-1, 1), torch.stack(neg), 0.2)

    torch.testing.assert_close(out["loss_single"], 0.7 * single)
    torch.testing.assert_close(out["loss_dense"], 0.3 * dense)
    torch.testing.assert_close(out["loss"], 0.7 * single + 0.3 * dense)
    # each queue now holds exactly this batch's keys in its first 4 columns, the rest untouched
    assert int(model.queue_ptr) == int(model.queue2_ptr) == 4
    torch.testing.assert_close(model.queue[:, :4], k.T)
    torch.testing.assert_close(model.queue2[:, :4], k2.T)
    torch.testing.assert_close(model.queue[:, 4:], queue[:, 4:])
    torch.testing.assert_close(model.queue2[:, 4:], queue2[:, 4:])


def test_hook_sets_loss_lambda_to_zero_before_start_iters_and_to_the_configured_value_from_then_on():
    model = SimpleNamespace(loss_lambda=0.7)
    runner = SimpleNamespace(algorithm=model, global_iter=0)
    hook = build(dict(type="DenseCLHook", start_iters=3), HOOKS)
    hook.before_run(runner)
    seen = []
    for it in range(5):
        runner.global_iter = it
        hook.before_train_iter(runner)
        seen.append(model.loss_lambda)
    assert seen == [0.0, 0.0, 0.0, 0.7, 0.7]
    assert DenseCLHook().start_iters == 1000


def test_with_loss_lambda_zero_the_loss_is_the_global_loss_alone():
    torch.manual_seed(0)
    model = build(tiny_cfg(), ALGORITHMS).train()
    twin = copy.deepcopy(model)
    views = two_views()
    model.loss_lambda = 0.0
    out = model(views)
    torch.testing.assert_close(out["loss"], out["loss_single"])
    assert out["loss_dense"] == 0
    torch.testing.assert_close(out["loss"], twin(views)["loss_single"] / 0.7)


def test_bad_inputs_are_config_errors_naming_the_field():
    model = build(tiny_cfg(), ALGORITHMS)
    with pytest.raises(ConfigError, match=r"DenseCL needs 2 views per sample, the pipeline gives 3"):
        model.check_data(num_samples=64, global_batch=8, num_views=3)
    with pytest.raises(ConfigError, match=r"model.queue_len=16 is not divisible by the global batch size 12"):
        model.check_data(num_samples=64, global_batch=12, num_views=2)
    with pytest.raises(ConfigError, match=r"model.feat_dim=4 but the neck outputs 8"):
        build(tiny_cfg(feat_dim=4), ALGORITHMS).check_data(num_samples=64, global_batch=8, num_views=2)
    with pytest.raises(ConfigError, match=r"DenseCLHook needs an algorithm with a loss_lambda \(DenseCL\), not MoCo"):
        DenseCLHook().before_run(SimpleNamespace(algorithm=build_algorithm(
            load_config("selfsup/mocov2/mocov2_resnet18-w16_1xb64-coslr-10e_fmnist.py").model)))


def test_train_resume_and_extract_on_the_tiny_config(fmnist_tiny, tmp_path):
    work = tmp_path / "work"
    first = train(TINY, fmnist_tiny, str(work), ["runner.max_epochs=1"])
    assert first["iterations"] == 4
    resumed = train(TINY, fmnist_tiny, str(work))
    assert resumed["iterations"] == 8 and torch.isfinite(torch.tensor(resumed["final_loss"]))
    state = torch.load(work / "epoch_2.pth", weights_only=True)["state_dict"]
    assert int(state["queue2_ptr"]) == 0 and int(state["queue_ptr"]) == 0  # 8 batches of 16 keys in 64 columns
    info = extract(str(work), str(tmp_path / "extracted"))
    weights = torch.load(tmp_path / "extracted" / "backbone.pth", weights_only=True)
    assert info["algorithm"] == "DenseCL"
    torch.testing.assert_close(weights["conv1.weight"], state["backbone.conv1.weight"])


@pytest.mark.parametrize("recipe", [IN1K])
def test_imagenet_recipe_loads_and_builds_with_the_seeds_settings(recipe):
    cfg = load_config(recipe)
    model = build_algorithm(cfg.model)
    assert type(model).__name__ == "DenseCL" and model.loss_lambda == 0.5 and model.momentum == 0.999
    assert model.queue.shape == model.queue2.shape == (128, 65536) and model.head.temperature == 0.2
    assert model.neck.in_channels == 2048 and model.neck.num_grid is None
    assert cfg.optimizer.lr == 0.03 and cfg.optimizer.weight_decay == 1e-4 and cfg.runner.max_epochs == 200
    assert cfg.data.samples_per_gpu == 32 and cfg.data.train.num_views == [2]
