"""MoCo v3: the symmetric contrastive loss, the momentum encoder under the cosine schedule, the frozen
patch projection, resume and extract, the seed's recipe."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ssl_lib.config import load_config
from ssl_lib.engine.checkpoint import load as load_checkpoint
from ssl_lib.engine.hooks import MomentumUpdateHook
from ssl_lib.engine.optimizer import build_optimizer
from ssl_lib.engine.runner import EpochRunner
from ssl_lib.engine.train import train
from ssl_lib.models import build_algorithm
from ssl_lib.models.algorithms.mocov3 import encode
from ssl_lib.models.losses import mocov3_contrastive
from ssl_lib.stages.extract import extract

TINY = str(Path(__file__).parent / "configs" / "mocov3_vit-d32-l2-p4_1xb16-coslr-2e_fmnist.py")
IN1K = "selfsup/mocov3/mocov3_vit-small-p16_32xb128-fp16-coslr-300e_in1k.py"


class FakeRunner:
    def __init__(self, algorithm, global_iter: int, max_iters: int):
        self.algorithm, self.global_iter, self.max_iters = algorithm, global_iter, max_iters


def test_the_loss_is_two_tau_times_the_cross_entropy_of_each_query_against_the_global_batchs_keys():
    q = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    # cosines [[1, 0], [0, 1]], T = 1: -log(e / (e + 1)) per query, times 2 T = 2
    assert mocov3_contrastive(q, k, 1.0).item() == pytest.approx(2 * math.log(1 + math.exp(-1)))
    # T = 0.5, this process's queries are keys 2 and 3 of a global batch of 4 (offset 2)
    keys = torch.tensor([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    logits = F.normalize(q, dim=1) @ F.normalize(keys, dim=1).T / 0.5
    ce = -(torch.log_softmax(logits, 1)[0, 2] + torch.log_softmax(logits, 1)[1, 3]) / 2
    assert mocov3_contrastive(q, keys, 0.5, offset=2).item() == pytest.approx(ce.item() * 2 * 0.5)


def test_loss_is_each_views_prediction_against_the_other_views_momentum_keys_summed():
    torch.manual_seed(0)
    model = build_algorithm(load_config(TINY).model).train()
    v1, v2 = torch.randn(8, 3, 32, 32), torch.randn(8, 3, 32, 32)
    state = {k: v.clone() for k, v in model.state_dict().items()}  # BN statistics move at each pass
    loss = model([v1, v2])["loss"]
    model.load_state_dict(state)
    with torch.no_grad():
        q1, q2 = encode(model.base_encoder, v1), encode(model.base_encoder, v2)
        k1, k2 = encode(model.momentum_encoder, v1), encode(model.momentum_encoder, v2)
        p1, p2 = model.head.predictor((q1,))[0], model.head.predictor((q2,))[0]
    expected = mocov3_contrastive(p1, k2, 0.2) + mocov3_contrastive(p2, k1, 0.2)
    torch.testing.assert_close(loss.detach(), expected)


def test_the_projector_reads_the_cls_token():
    model = build_algorithm(load_config(TINY).model).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        cls = model.backbone(x)[-1][1]
        torch.testing.assert_close(encode(model.base_encoder, x), model.neck((cls,))[0])


def test_two_steps_every_trainable_parameter_gets_a_gradient_the_patch_projection_stays_and_momentum_is_cosine():
    torch.manual_seed(0)
    cfg = load_config(TINY)
    model = build_algorithm(cfg.model).train()
    optimizer = build_optimizer(cfg.optimizer, model)
    hook = MomentumUpdateHook()
    proj = model.backbone.patch_embed.proj.weight.detach().clone()
    for k in range(2):
        runner = FakeRunner(model, global_iter=k, max_iters=4)
        hook.before_train_iter(runner)
        m = 1 - (1 - 0.99) * (math.cos(math.pi * k / 4) + 1) / 2
        assert model.momentum == pytest.approx(m, abs=1e-12)
        loss = model([torch.randn(8, 3, 32, 32), torch.randn(8, 3, 32, 32)])["loss"]
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
        assert trainable and all(n.startswith(("backbone.", "neck.", "head.predictor.")) for n in trainable)
        assert [n for n, p in trainable.items() if p.grad is None or not torch.isfinite(p.grad).all()] == []
        assert not model.backbone.patch_embed.proj.weight.requires_grad
        assert all(p.grad is None for p in model.momentum_encoder.parameters())
        optimizer.step()
        old = [p.detach().clone() for p in model.momentum_encoder.parameters()]
        base = [p.detach().clone() for p in model.base_encoder.parameters()]
        hook.after_train_iter(runner)
        for new, o, b in zip(model.momentum_encoder.parameters(), old, base):
            torch.testing.assert_close(new, m * o + (1 - m) * b, rtol=0, atol=1e-6)
    torch.testing.assert_close(model.backbone.patch_embed.proj.weight, proj, rtol=0, atol=0)
    assert model.base_encoder[0] is model.backbone and model.base_encoder[1] is model.neck


def test_training_resumes_from_a_checkpoint_and_extract_gives_its_backbone(fmnist_tiny, tmp_path):
    whole = tmp_path / "whole"
    EpochRunner(load_config(TINY), fmnist_tiny, str(whole)).run()
    (tmp_path / "resumed").mkdir()
    shutil.copy(whole / "epoch_1.pth", tmp_path / "resumed" / "epoch_1.pth")
    train(TINY, fmnist_tiny, str(tmp_path / "resumed"))
    a, b = load_checkpoint(str(whole / "epoch_2.pth")), load_checkpoint(str(tmp_path / "resumed" / "epoch_2.pth"))
    assert a["meta"]["iter"] == b["meta"]["iter"] == 8
    assert any(k.startswith("momentum_encoder.") for k in a["state_dict"])
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, msg=key)
    extract(str(tmp_path / "resumed"), str(tmp_path / "backbone"))
    weights = torch.load(tmp_path / "backbone" / "backbone.pth", weights_only=True)
    backbone = {k.removeprefix("backbone."): v for k, v in b["state_dict"].items() if k.startswith("backbone.")}
    assert weights.keys() == backbone.keys() and "patch_embed.proj.weight" in weights
    for key, value in backbone.items():
        torch.testing.assert_close(weights[key], value)


def test_the_seeds_imagenet_recipe_loads_and_builds_mocov3s_vit_small():
    cfg = load_config(IN1K)
    with torch.device("meta"):
        model = build_algorithm(cfg.model)
    assert type(model).__name__ == "MoCoV3" and model.base_momentum == 0.99 and model.head.temperature == 0.2
    vit = model.backbone
    assert (vit.embed_dims, len(vit.blocks), vit.blocks[0].attn.num_heads, vit.patch_embed.patch_size) == \
        (384, 12, 12, (16, 16))
    assert not vit.patch_embed.proj.weight.requires_grad and not vit.pos_embed.requires_grad
    assert (model.neck.fc0.in_features, model.neck.fc2.out_features, model.head.predictor.fc1.out_features) == \
        (384, 256, 256)
    assert cfg.custom_hooks == [dict(type="MomentumUpdateHook")] and cfg.fp16 == dict(loss_scale="dynamic")
    assert cfg.optimizer == dict(type="AdamW", lr=2.4e-3, weight_decay=0.1) and cfg.data.samples_per_gpu == 128
    assert (cfg.lr_config.warmup_iters, cfg.lr_config.warmup_by_epoch, cfg.runner.max_epochs) == (40, True, 300)
