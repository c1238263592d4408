"""MoCo v1: the MoCo class with the seed's LinearNeck; its queue after each step, its key encoder's
momentum rule, the seed's recipe, and a train -> resume -> extract round trip on the tiny config."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ssl_lib.config import load_config
from ssl_lib.engine.schedules import lr_at
from ssl_lib.engine.train import train
from ssl_lib.errors import ConfigError
from ssl_lib.models import LinearNeck, build_algorithm
from ssl_lib.registry import ALGORITHMS, build
from ssl_lib.stages.extract import extract

TINY = str(Path(__file__).parent / "configs" / "mocov1_resnet18-w8_1xb16-steplr-2e_fmnist.py")
IN1K = "selfsup/mocov1/mocov1_resnet50_8xb32-steplr-200e_in1k.py"


def tiny_cfg(**overrides) -> dict:
    """Plain BN: the key batch's statistics do not depend on the order the key shuffle puts it in."""
    cfg = dict(
        type="MoCo", queue_len=32, feat_dim=16, momentum=0.9,
        backbone=dict(type="ResNet", depth=18, base_channels=8, stem="cifar"),
        neck=dict(type="LinearNeck", in_channels=64, out_channels=16),
        head=dict(type="ContrastiveHead", temperature=0.07))
    cfg.update(overrides)
    return cfg


def two_views(batch: int, size: int) -> list[torch.Tensor]:
    x = torch.randn(batch, 3, size, size)
    return [x + 0.1 * torch.randn_like(x), x + 0.1 * torch.randn_like(x)]


def test_tiny_config_trains_two_steps_with_every_parameter_getting_a_gradient_and_keys_following_by_momentum():
    torch.manual_seed(0)
    model = build_algorithm(load_config(TINY).model).train()
    assert type(model.neck) is LinearNeck
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    views = two_views(16, 28)
    for step in range(2):
        keys = [p.detach().clone() for p in model.encoder_k.parameters()]
        query = [p.detach().clone() for p in [*model.backbone.parameters(), *model.neck.parameters()]]
        loss = model(views, mode="train")["loss"]
        assert torch.isfinite(loss)
        m = model.momentum
        for k_new, k_old, q in zip(model.encoder_k.parameters(), keys, query, strict=True):
            torch.testing.assert_close(k_new, m * k_old + (1 - m) * q)
        opt.zero_grad()
        loss.backward()
        no_grad = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
        assert not no_grad, no_grad
        assert all(p.grad is None and not p.requires_grad for p in model.encoder_k.parameters())
        opt.step()
    assert any(not torch.equal(k, q) for k, q in zip(model.encoder_k.parameters(), model.backbone.parameters()))


def test_queue_holds_each_steps_keys_at_the_pointer_and_no_sample_meets_its_own_key_among_its_negatives():
    torch.manual_seed(0)
    model = build(tiny_cfg(), ALGORITHMS).train()
    seen = {}
    model.neck.register_forward_hook(lambda mod, args, out: seen.__setitem__("q", F.normalize(out[0], dim=1)))
    model.head.register_forward_hook(lambda mod, args, out: seen.update(pos=args[0], neg=args[1]))
    enqueue = model._dequeue_and_enqueue
    model._dequeue_and_enqueue = lambda keys: (seen.__setitem__("k", keys.clone()), enqueue(keys))

    initial = model.queue.clone()
    history = []
    with torch.no_grad():
        for step in range(2):
            before, ptr = model.queue.clone(), int(model.queue_ptr)
            model(two_views(8, 16))
            q, k, pos, neg = seen["q"], seen["k"], seen["pos"], seen["neg"]
            history.append(k)
            assert ptr == 8 * step and int(model.queue_ptr) == ptr + 8
            # this step's keys sit at [ptr, ptr + 8); every other column is as before
            torch.testing.assert_close(model.queue[:, ptr:ptr + 8], k.T)
            rest = torch.ones(32, dtype=torch.bool)
            rest[ptr:ptr + 8] = False
            torch.testing.assert_close(model.queue[:, rest], before[:, rest])
            torch.testing.assert_close(k.norm(dim=1), torch.ones(8))
            # the logits: the positive is q . own key, the negatives q . the queue as it was before this step
            torch.testing.assert_close(pos, (q * k).sum(1, keepdim=True))
            torch.testing.assert_close(neg, q @ before)
            own = neg[torch.arange(8), ptr + torch.arange(8)]  # the columns the own keys went to afterwards
            assert ((own - pos[:, 0]).abs() > 1e-3).all()
    torch.testing.assert_close(model.queue[:, :8], history[0].T)  # the first keys stay until the queue wraps
    torch.testing.assert_close(model.queue[:, 16:], initial[:, 16:])


def test_linear_neck_pools_the_last_map_and_applies_fc_with_the_seeds_parameter_names():
    neck = LinearNeck(in_channels=2, out_channels=3)
    with torch.no_grad():
        neck.fc.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, -1.0]]))
        neck.fc.bias.copy_(torch.tensor([0.5, 0.0, -1.0]))
    x = torch.tensor([[[[1.0, 3.0], [2.0, 2.0]], [[0.0, 4.0], [-1.0, 1.0]]]])  # means (2, 1)
    (out,) = neck((torch.zeros(1, 5, 3, 3), x))
    torch.testing.assert_close(out, torch.tensor([[2.5, 2.0, 0.0]]))
    (flat,) = LinearNeck(in_channels=8, out_channels=3, with_avg_pool=False)((torch.randn(4, 2, 2, 2),))
    assert flat.shape == (4, 3)
    assert set(neck.state_dict()) == {"fc.weight", "fc.bias"}


def test_bad_inputs_are_config_errors_naming_the_field():
    with pytest.raises(ConfigError, match=r"model.feat_dim=8 but the neck outputs 16; set model.feat_dim=16"):
        build(tiny_cfg(feat_dim=8), ALGORITHMS).check_data(num_samples=64, global_batch=8, num_views=2)
    with pytest.raises(ConfigError, match=r"model.neck.in_channels=32 does not match the backbone's output width 64"):
        build(tiny_cfg(neck=dict(type="LinearNeck", in_channels=32, out_channels=16)), ALGORITHMS)
    with pytest.raises(ConfigError, match=r"MoCo needs 2 views per sample, the pipeline gives 1"):
        build(tiny_cfg(), ALGORITHMS).check_data(num_samples=64, global_batch=8, num_views=1)


def test_train_resume_and_extract_on_the_tiny_config(fmnist_tiny, tmp_path):
    work = tmp_path / "work"
    first = train(TINY, fmnist_tiny, str(work), ["runner.max_epochs=1"])
    assert first["iterations"] == 4
    resumed = train(TINY, fmnist_tiny, str(work))
    assert resumed["iterations"] == 8 and torch.isfinite(torch.tensor(resumed["final_loss"]))
    state = torch.load(work / "epoch_2.pth", weights_only=True)
    assert int(state["state_dict"]["queue_ptr"]) == 0  # 8 batches of 16 keys in 64 columns
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.006)  # stepped down after epoch 1
    info = extract(str(work), str(tmp_path / "extracted"))
    weights = torch.load(tmp_path / "extracted" / "backbone.pth", weights_only=True)
    assert info["algorithm"] == "MoCo"
    torch.testing.assert_close(weights["conv1.weight"], state["state_dict"]["backbone.conv1.weight"])


@pytest.mark.parametrize("recipe", [IN1K])
def test_imagenet_recipe_loads_and_builds_with_the_seeds_settings(recipe):
    cfg = load_config(recipe)
    model = build_algorithm(cfg.model)
    assert type(model).__name__ == "MoCo" and model.momentum == 0.999 and model.queue.shape == (128, 65536)
    assert type(model.neck) is LinearNeck and model.neck.fc.weight.shape == (128, 2048)
    assert model.head.temperature == 0.07
    assert cfg.optimizer.type == "SGD" and cfg.optimizer.lr == 0.03 and cfg.optimizer.weight_decay == 1e-4
    lrs = [lr_at(cfg.lr_config, 0.03, epoch, 0, 10, cfg.runner.max_epochs) for epoch in (119, 120, 159, 160)]
    assert lrs == pytest.approx([0.03, 0.003, 0.003, 0.0003]) and cfg.runner.max_epochs == 200
    assert cfg.data.samples_per_gpu == 32 and cfg.data.train.num_views == [2]
    types = [t["type"] for t in cfg.data.train.pipelines[0]]
    assert types == ["RandomResizedCrop", "RandomGrayscale", "ColorJitter", "RandomHorizontalFlip", "ToTensor",
                     "Normalize"]
    crop, gray, jitter = cfg.data.train.pipelines[0][:3]
    assert crop["scale"] == (0.2, 1.0) and gray["p"] == 0.2
    assert [jitter[k] for k in ("brightness", "contrast", "saturation", "hue")] == [0.4] * 4
