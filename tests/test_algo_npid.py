"""NPID: the memory bank's update rule, negative sampling, the non-parametric softmax, the memory
length check, and a train -> resume -> extract round trip on the tiny config."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from ssl_lib.config import load_config
from ssl_lib.engine.train import train
from ssl_lib.errors import ConfigError
from ssl_lib.models import SimpleMemory, build_algorithm
from ssl_lib.models.algorithms.npid import sample_negatives
from ssl_lib.registry import ALGORITHMS, build
from ssl_lib.stages.extract import extract

TINY = str(Path(__file__).parent / "configs" / "npid_resnet18-w8_1xb16-steplr-2e_fmnist.py")
IN1K = "selfsup/npid/npid_resnet50_8xb32-steplr-200e_in1k.py"


def tiny_cfg(**overrides) -> dict:
    cfg = dict(
        type="NPID", neg_num=8, ensure_neg=False,
        backbone=dict(type="ResNet", depth=18, base_channels=8, stem="cifar"),
        neck=dict(type="LinearNeck", in_channels=64, out_channels=4),
        head=dict(type="ContrastiveHead", temperature=0.07),
        memory_bank=dict(type="SimpleMemory", length=10, feat_dim=4, momentum=0.3))
    cfg.update(overrides)
    return cfg


def test_tiny_config_trains_two_steps_with_every_parameter_getting_a_gradient():
    torch.manual_seed(0)
    model = build_algorithm(load_config(TINY).model).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9)
    assert not any(p.requires_grad for p in model.memory_bank.parameters())
    for step in range(2):
        out = model([torch.randn(16, 3, 28, 28)], mode="train", idx=torch.arange(16) + 16 * step)
        assert torch.isfinite(out["loss"])
        opt.zero_grad()
        out["loss"].backward()
        no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
        assert not no_grad
        opt.step()


def test_memory_update_is_the_seeds_momentum_rule_on_normalised_features():
    memory = SimpleMemory(length=3, feat_dim=2, momentum=0.25)
    memory.feature_bank.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]))
    memory.update(torch.tensor([0, 2]), torch.tensor([[0.0, 2.0], [-3.0, 0.0]]))
    # row 0: 0.75 * (1, 0) + 0.25 * (0, 1) = (0.75, 0.25); row 2: 0.75 * (0.6, 0.8) + 0.25 * (-1, 0) = (0.2, 0.6)
    expected = torch.tensor([[0.75, 0.25], [0.0, 1.0], [0.2, 0.6]])
    torch.testing.assert_close(memory.feature_bank, F.normalize(expected, dim=1))


def _two_rank_update(rank: int, init_file: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    memory = SimpleMemory(length=4, feat_dim=2, momentum=0.5)
    memory.feature_bank.copy_(torch.tensor([[1.0, 0.0]] * 4))
    # rank 0 updates row 1, rank 1 updates row 3
    memory.update(torch.tensor([1 + 2 * rank]), torch.tensor([[0.0, 1.0 + rank]]))
    results[rank] = memory.feature_bank.clone()
    dist.destroy_process_group()


def test_every_rank_applies_the_updates_of_every_rank(tmp_path):
    results = mp.Manager().dict()
    mp.start_processes(_two_rank_update, args=(str(tmp_path / "init"), results), nprocs=2, start_method="fork")
    diagonal = [math.sqrt(0.5)] * 2
    expected = torch.tensor([[1.0, 0.0], diagonal, [1.0, 0.0], diagonal])
    torch.testing.assert_close(results[0], expected)
    torch.testing.assert_close(results[1], expected)


def test_a_step_updates_exactly_the_batch_rows_of_the_memory_bank():
    torch.manual_seed(0)
    model = build(tiny_cfg(), ALGORITHMS).train()
    bank = model.memory_bank.feature_bank.clone()
    x, idx = torch.randn(3, 3, 16, 16), torch.tensor([5, 2, 9])
    model([x], idx=idx)
    with torch.no_grad():
        feature = F.normalize(model.neck(model.backbone(x))[0], dim=1)
    expected = bank.clone()
    expected[idx] = F.normalize(0.7 * bank[idx] + 0.3 * feature, dim=1)
    torch.testing.assert_close(model.memory_bank.feature_bank, expected)
    assert torch.equal(model.memory_bank.feature_bank[[0, 1, 3, 4, 6, 7, 8]], bank[[0, 1, 3, 4, 6, 7, 8]])


def test_ensure_neg_never_leaves_a_samples_own_index_among_its_negatives():
    torch.manual_seed(0)
    idx = torch.tensor([0, 1, 2, 1])
    plain = sample_negatives(idx, length=3, neg_num=300)
    assert (plain == idx.view(-1, 1)).any(dim=1).all()  # without it, every sample draws itself
    neg = sample_negatives(idx, length=3, neg_num=300, ensure_neg=True)
    assert neg.shape == (4, 300)
    assert not (neg == idx.view(-1, 1)).any()
    assert [sorted(set(row.tolist())) for row in neg] == [[1, 2], [0, 2], [0, 1], [0, 2]]


def test_loss_is_the_non_parametric_softmax_over_the_own_row_and_the_sampled_rows():
    # two memory rows and ensure_neg: every negative of sample 0 is row 1 and vice versa
    torch.manual_seed(0)
    model = build(tiny_cfg(neg_num=5, ensure_neg=True,
                           memory_bank=dict(type="SimpleMemory", length=2, feat_dim=4, momentum=0.5)),
                  ALGORITHMS).train()
    bank = model.memory_bank.feature_bank.clone()
    x, idx = torch.randn(2, 3, 16, 16), torch.tensor([1, 0])
    loss = model([x], idx=idx)["loss"]
    with torch.no_grad():
        v = F.normalize(model.neck(model.backbone(x))[0], dim=1)
    expected = 0.0
    for n, own in enumerate([1, 0]):
        pos, neg = v[n] @ bank[own] / 0.07, v[n] @ bank[1 - own] / 0.07
        expected += -(pos - torch.log(torch.exp(pos) + 5 * torch.exp(neg))) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_memory_length_must_equal_the_training_split_before_training(fmnist_tiny, tmp_path):
    model = build(tiny_cfg(), ALGORITHMS)
    with pytest.raises(ConfigError, match=r"model.memory_bank.length=10 but the training split has 12 images; "
                                          r"set model.memory_bank.length=12"):
        model.check_data(num_samples=12, global_batch=4, num_views=None)
    model.check_data(num_samples=10, global_batch=4, num_views=None)
    with pytest.raises(ConfigError, match=r"set model.memory_bank.length=64"):
        train(TINY, fmnist_tiny, str(tmp_path), ["model.memory_bank.length=100"])
    assert not list(tmp_path.glob("*.pth"))


def test_bad_model_settings_are_config_errors_naming_the_field():
    with pytest.raises(ConfigError, match=r"model.memory_bank.feat_dim=8 but the neck outputs 4; "
                                          r"set model.memory_bank.feat_dim=4"):
        build(tiny_cfg(memory_bank=dict(type="SimpleMemory", length=10, feat_dim=8)), ALGORITHMS)
    with pytest.raises(ConfigError, match=r"ensure_neg=True needs model.memory_bank.length >= 2"):
        build(tiny_cfg(ensure_neg=True, memory_bank=dict(type="SimpleMemory", length=1, feat_dim=4)), ALGORITHMS)
    with pytest.raises(ConfigError, match=r"NPID needs 1 views per sample, the pipeline gives 2"):
        build(tiny_cfg(), ALGORITHMS).check_data(num_samples=10, global_batch=4, num_views=2)


def test_train_resume_and_extract_on_the_tiny_config(fmnist_tiny, tmp_path):
    work = tmp_path / "work"
    assert train(TINY, fmnist_tiny, str(work), ["runner.max_epochs=1"])["iterations"] == 4
    after_one = torch.load(work / "epoch_1.pth", weights_only=True)["state_dict"]["memory_bank.feature_bank"]
    # after one epoch every row has been updated once: unit rows, none left at the random start
    torch.testing.assert_close(after_one.norm(dim=1), torch.ones(64))
    resumed = train(TINY, fmnist_tiny, str(work))
    assert resumed["iterations"] == 8 and math.isfinite(resumed["final_loss"])
    state = torch.load(work / "epoch_2.pth", weights_only=True)["state_dict"]
    assert not torch.equal(state["memory_bank.feature_bank"], after_one)
    info = extract(str(work), str(tmp_path / "extracted"))
    weights = torch.load(tmp_path / "extracted" / "backbone.pth", weights_only=True)
    assert info["algorithm"] == "NPID"
    torch.testing.assert_close(weights["conv1.weight"], state["backbone.conv1.weight"])


@pytest.mark.parametrize("recipe", [IN1K])
def test_imagenet_recipe_loads_and_builds_with_the_seeds_settings(recipe):
    cfg = load_config(recipe)
    assert cfg.model.memory_bank.length == 1281167  # ImageNet-1k's training split
    # built with a short bank: the full one is 656 MB of random numbers
    model = build_algorithm(load_config(recipe, ["model.memory_bank.length=1000"]).model)
    assert type(model).__name__ == "NPID" and model.neg_num == 65536 and not model.ensure_neg
    assert model.memory_bank.feat_dim == 128 and model.memory_bank.momentum == 0.5
    assert model.head.temperature == 0.07 and model.neck.in_channels == 2048
    assert cfg.optimizer.lr == 0.03 and cfg.optimizer.weight_decay == 1e-4
    assert cfg.lr_config.step == [120, 160] and cfg.runner.max_epochs == 200
    assert cfg.data.train.type == "SingleViewDataset" and cfg.data.samples_per_gpu == 32
