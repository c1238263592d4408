"""DINO: student and EMA teacher, the centre, the teacher temperature warm-up, the frozen last layer,
the recipes, and train -> resume -> extract on the tiny config."""
from __future__ import annotations

import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from ssl_lib.config import load_config
from ssl_lib.engine.checkpoint import load as load_checkpoint
from ssl_lib.engine.hooks import DINOHook, Hook, MomentumUpdateHook, WeightDecayUpdateHook, get_priority
from ssl_lib.engine.hooks.dino_hook import teacher_temp_at
from ssl_lib.engine.optimizer import build_optimizer
from ssl_lib.engine.runner import EpochRunner
from ssl_lib.engine.train import train
from ssl_lib.errors import ConfigError
from ssl_lib.models import DINONeck, build_algorithm
from ssl_lib.models.losses import dino
from ssl_lib.stages.extract import extract

TINY = str(Path(__file__).parent / "configs" / "dino_resnet18-w8_1xb16-mcrop-2-4-coslr-2e_fmnist.py")
IN1K = "selfsup/dino/dino_resnet50_8xb64-mcrop-2-6-coslr-100e_in1k.py"


def tiny_dino():
    cfg = load_config(TINY)
    return cfg, build_algorithm(cfg.model)


def multi_crop(batch: int = 4, sizes=(28, 28, 16, 16, 16, 16)) -> list[torch.Tensor]:
    return [torch.randn(batch, 3, s, s) for s in sizes]


def cosine_momentum(base: float, k: int, total: int) -> float:
    """DINO's teacher momentum: from `base` at iteration 0 to 1 along half a cosine."""
    return 1 - (1 - base) * (math.cos(math.pi * k / total) + 1) / 2


def test_two_steps_give_every_student_parameter_a_gradient_none_to_the_teacher_which_follows_the_ema_rule():
    torch.manual_seed(0)
    cfg, model = tiny_dino()
    model.train()
    optimizer = build_optimizer(cfg.optimizer, model)
    hook = MomentumUpdateHook(end_momentum=1.0)
    for k in range(2):
        runner = SimpleNamespace(algorithm=model, global_iter=k, max_iters=4)
        hook.before_train_iter(runner)
        m = cosine_momentum(0.9, k, 4)
        assert model.momentum == pytest.approx(m, abs=1e-12)
        loss = model(multi_crop(), mode="train")["loss"]
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
        assert all(n.startswith(("backbone.", "neck.")) for n in trainable)
        assert "neck.last_layer.weight_g" not in trainable  # the norm of the last layer stays 1
        assert [n for n, p in trainable.items() if p.grad is None or not torch.isfinite(p.grad).all()] == []
        assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())
        optimizer.step()
        teacher = [p.detach().clone() for p in model.teacher.parameters()]
        student = [p.detach().clone() for p in model.student.parameters()]
        hook.after_train_iter(runner)
        for t_new, t_old, s in zip(model.teacher.parameters(), teacher, student):
            torch.testing.assert_close(t_new, m * t_old + (1 - m) * s, rtol=0, atol=1e-6)
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and not p.grad.any()]
    assert not no_grad


def test_loss_is_the_dino_function_of_all_student_crops_and_the_teachers_global_crops_then_the_centre_moves():
    torch.manual_seed(0)
    _, model = tiny_dino()
    model.train()
    with torch.no_grad():
        model.head.center.normal_()
    model.head.teacher_temp = 0.05
    crops = multi_crop()
    old_center = model.head.center.clone()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    loss = model(crops)["loss"]
    new_center = model.head.center.clone()
    model.load_state_dict(state)
    with torch.no_grad():
        student = list(model.student(torch.cat(crops[:2]))[0].chunk(2)) + \
            list(model.student(torch.cat(crops[2:]))[0].chunk(4))
        teacher = model.teacher(torch.cat(crops[:2]))[0].chunk(2)
    expected = dino(student, teacher, old_center, student_temp=0.1, teacher_temp=0.05)
    torch.testing.assert_close(loss.detach(), expected)
    batch_mean = torch.cat(teacher).mean(dim=0, keepdim=True)  # over both global crops and the batch
    torch.testing.assert_close(new_center, 0.9 * old_center + 0.1 * batch_mean)


def test_the_teacher_starts_as_a_copy_of_the_student_and_sees_only_the_global_crops():
    _, model = tiny_dino()
    assert model.student[0] is model.backbone and model.student[1] is model.neck
    for s, t in zip(model.student.state_dict().values(), model.teacher.state_dict().values()):
        torch.testing.assert_close(s, t)
    seen = []
    model.teacher.register_forward_hook(lambda m, inp, out: seen.append(tuple(inp[0].shape)))
    model.student.register_forward_hook(lambda m, inp, out: seen.append(tuple(inp[0].shape)))
    model(multi_crop(batch=4))
    assert seen == [(8, 3, 28, 28), (16, 3, 16, 16), (8, 3, 28, 28)]  # student per crop size, then teacher


def test_dino_neck_is_an_l2_normalised_bottleneck_then_a_weight_normalised_layer_of_unit_rows():
    torch.manual_seed(0)
    neck = DINONeck(in_channels=6, out_channels=5, hid_channels=7, bottleneck_channels=3)
    x = torch.randn(4, 6, 2, 2)
    bottleneck = F.normalize(neck.mlp(x.mean(dim=(2, 3))), dim=1)
    rows = F.normalize(neck.last_layer.weight_v, dim=1)
    torch.testing.assert_close(neck((x,))[0], bottleneck @ rows.T)
    assert [type(m).__name__ for m in neck.mlp] == ["Linear", "GELU", "Linear", "GELU", "Linear"]
    assert set(dict(neck.named_parameters())) >= {"last_layer.weight_g", "last_layer.weight_v", "mlp.0.weight"}
    cls = torch.randn(4, 6)  # a ViT's output: [patch tokens, cls token]; DINO projects the cls token
    torch.testing.assert_close(neck(([x, cls],))[0], F.normalize(neck.mlp(cls), dim=1) @ rows.T)


def test_teacher_temperature_warms_up_linearly_over_the_warmup_epochs_then_stays():
    # numpy.linspace(0.04, 0.07, 30) then 0.07: DINO's schedule
    assert [teacher_temp_at(e, 0.04, 0.07, 30) for e in (0, 1, 15, 29, 30, 99)] == pytest.approx(
        [0.04, 0.04 + 0.03 / 29, 0.04 + 0.03 * 15 / 29, 0.07, 0.07, 0.07], abs=1e-12)
    assert teacher_temp_at(0, 0.04, 0.07, 0) == 0.07 and teacher_temp_at(0, 0.04, 0.07, 1) == 0.04
    with pytest.raises(ConfigError, match=r"warmup_epochs >= 0"):
        DINOHook(warmup_epochs=-1)


class _Record(Hook):
    """After the optimizer step (40), before MomentumUpdateHook (50): teacher temperature, momentum,
    last layer, both networks."""

    priority = 45

    def __init__(self):
        self.seen = []

    def after_train_iter(self, runner) -> None:
        model = runner.algorithm
        self.seen.append((runner.epoch, model.head.teacher_temp, model.momentum,
                          model.neck.last_layer.weight_v.detach().clone(),
                          [p.detach().clone() for p in model.teacher.parameters()],
                          [p.detach().clone() for p in model.student.parameters()]))


class _After(Hook):
    priority = 60

    def __init__(self):
        self.teachers = []

    def after_train_iter(self, runner) -> None:
        self.teachers.append([p.detach().clone() for p in runner.algorithm.teacher.parameters()])


def test_in_training_the_hooks_warm_the_temperature_move_the_teacher_and_the_last_layer_waits(fmnist_tiny, tmp_path):
    work = tmp_path / "whole"
    runner = EpochRunner(load_config(TINY), fmnist_tiny, str(work))
    record, after = _Record(), _After()
    runner.hooks = sorted([*runner.hooks, record, after], key=lambda h: get_priority(h.priority))
    initial_last = runner.algorithm.neck.last_layer.weight_v.detach().clone()
    metrics = runner.run()
    assert metrics["iterations"] == 8 and math.isfinite(metrics["final_loss"])
    assert [(e, t) for e, t, *_ in record.seen] == [(0, 0.04)] * 4 + [(1, 0.07)] * 4
    for k, ((_, _, m, _, teacher, student), teacher_after) in enumerate(zip(record.seen, after.teachers)):
        assert m == pytest.approx(cosine_momentum(0.9, k, 8), abs=1e-12)
        for t_new, t_old, s in zip(teacher_after, teacher, student):
            torch.testing.assert_close(t_new, m * t_old + (1 - m) * s, rtol=0, atol=1e-6)
    last = [r[3] for r in record.seen]
    assert torch.equal(last[0], initial_last) and torch.equal(last[1], initial_last)  # frozen for 2 iterations
    assert not torch.equal(last[2], initial_last)
    state = load_checkpoint(str(work / "epoch_2.pth"))["state_dict"]
    assert "head.center" in state and state["head.center"].abs().sum() > 0

    # resume from the first epoch's checkpoint: the same weights, teacher and centre as the whole run
    (tmp_path / "resumed").mkdir()
    shutil.copy(work / "epoch_1.pth", tmp_path / "resumed" / "epoch_1.pth")
    train(TINY, fmnist_tiny, str(tmp_path / "resumed"))
    resumed = load_checkpoint(str(tmp_path / "resumed" / "epoch_2.pth"))
    assert resumed["meta"]["iter"] == 8
    for key, value in state.items():
        torch.testing.assert_close(resumed["state_dict"][key], value, msg=key)
    extract(str(tmp_path / "resumed"), str(tmp_path / "backbone"))
    weights = torch.load(tmp_path / "backbone" / "backbone.pth", weights_only=True)
    backbone = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    assert weights.keys() == backbone.keys()


def test_weight_decay_follows_a_cosine_to_its_end_value_on_decaying_groups_only_and_survives_a_resume():
    w, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.AdamW([dict(params=[w]), dict(params=[b], weight_decay=0.0)], lr=0.1, weight_decay=0.04)
    runner = SimpleNamespace(cfg=SimpleNamespace(optimizer=dict(type="AdamW", weight_decay=0.04)),
                             optimizer=optimizer, global_iter=0, max_iters=100)
    hook = WeightDecayUpdateHook(end_weight_decay=0.4)
    hook.setup(runner)
    seen = []
    for k in (0, 25, 50, 100):
        runner.global_iter = k
        hook.before_train_iter(runner)
        seen.append([g["weight_decay"] for g in optimizer.param_groups])
    # 0.4 + 0.5 * (0.04 - 0.4) * (1 + cos(pi k / 100))
    expected = [0.04, 0.4 - 0.18 * (1 + math.cos(math.pi / 4)), 0.22, 0.4]
    assert [s[0] for s in seen] == pytest.approx(expected) and [s[1] for s in seen] == [0.0] * 4
    # a resumed optimizer brings a scheduled value back with its param groups: the schedule still counts
    # from the weight decay the optimizer was built with
    state = optimizer.state_dict()
    state["param_groups"][0]["weight_decay"] = 0.3
    optimizer.load_state_dict(state)
    runner.global_iter = 50
    hook.before_train_iter(runner)
    assert optimizer.param_groups[0]["weight_decay"] == pytest.approx(0.22)
    with pytest.raises(ConfigError, match="needs optimizer.weight_decay > 0"):
        WeightDecayUpdateHook(end_weight_decay=0.4).setup(
            SimpleNamespace(cfg=SimpleNamespace(optimizer=dict(weight_decay=0.0)), optimizer=optimizer))
    vit_recipe = load_config("selfsup/dino/dino_vit-small-p16_16xb64-mcrop-2-6-coslr-100e_in1k.py")
    assert dict(type="WeightDecayUpdateHook", end_weight_decay=0.4) in vit_recipe.custom_hooks


def test_view_count_other_than_the_heads_num_crops_and_mismatched_widths_are_config_errors():
    cfg, model = tiny_dino()
    model.check_data(num_samples=64, global_batch=16, num_views=6)
    with pytest.raises(ConfigError, match=r"data.train.num_views gives 5 views per sample but "
                                          r"model.head.num_crops=\[2, 4\] sums to 6"):
        model.check_data(num_samples=64, global_batch=16, num_views=5)
    cfg.model.head.out_channels = 64
    with pytest.raises(ConfigError, match=r"model.head.out_channels=64 does not match the neck's output width 32"):
        build_algorithm(cfg.model)


def test_the_imagenet_recipe_loads_and_builds():
    cfg = load_config(IN1K)
    model = build_algorithm(cfg.model)
    assert type(model).__name__ == "DINO" and model.base_momentum == 0.996
    assert model.neck.last_layer.weight_v.shape == (65536, 256) and not model.neck.last_layer.weight_g.requires_grad
    assert model.head.num_crops == [2, 6] and cfg.data.train.num_views == [1, 1, 6]
    assert (model.head.student_temp, model.head.center_momentum) == (0.1, 0.9)
    assert [h["type"] for h in cfg.custom_hooks] == ["MomentumUpdateHook", "DINOHook"]
    assert cfg.optimizer_config.frozen_layers_cfg == {"neck.last_layer": 2502}
    assert cfg.optimizer.type == "SGD" and cfg.optimizer.lr == 0.06 and cfg.runner.max_epochs == 100
