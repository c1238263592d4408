"""The seed's linear evaluation: multi-head heads on feat1..feat5 + avgpool of a frozen backbone."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from ssl_lib.benchmarks.features import build_backbone
from ssl_lib.benchmarks.linear import RESNET50_CHANNELS, MultiClsHead, build_head, head_losses, train_linear
from ssl_lib.config import CONFIG_ROOT, load_config
from ssl_lib.errors import ConfigError
from ssl_lib.stages.linear import linear

TINY_CHANNELS = (4, 4, 8, 16, 32)
CLASSIFICATION = CONFIG_ROOT / "benchmarks" / "classification"


def _maps(channels, sides, batch=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, c, s, s, generator=gen) for c, s in zip(channels, sides))


def test_a_loss_on_one_head_moves_only_that_heads_parameters():
    head = MultiClsHead(TINY_CHANNELS, num_classes=5, with_avgpool=True)
    labels = torch.tensor([0, 3, 4])
    losses = head_losses(head(_maps(TINY_CHANNELS, (14, 14, 7, 4, 2))), labels)
    assert set(losses) == {"feat1", "feat2", "feat3", "feat4", "feat5", "avgpool"}
    for name in losses:
        head.zero_grad(set_to_none=True)
        losses[name].backward(retain_graph=True)
        for param_name, p in head.named_parameters():
            owner = param_name.split(".")[1]
            if owner == name:
                assert p.grad is not None and p.grad.abs().sum() > 0, param_name
            else:
                assert p.grad is None, f"{param_name} got a gradient from the {name} loss"

    # the summed loss gives every head exactly the gradient of its own loss
    head.zero_grad(set_to_none=True)
    sum(losses.values()).backward(retain_graph=True)
    together = {n: p.grad.clone() for n, p in head.named_parameters()}
    for name in losses:
        head.zero_grad(set_to_none=True)
        losses[name].backward(retain_graph=True)
        for param_name, p in head.named_parameters():
            if param_name.split(".")[1] == name:
                torch.testing.assert_close(together[param_name], p.grad)


def test_resnet50_shaped_maps_pool_to_the_seeds_dims():
    # ResNet-50 at 224 px: stem 56 px (after the max-pool), stages 56 / 28 / 14 / 7 px
    maps = _maps(RESNET50_CHANNELS, (56, 56, 28, 14, 7), batch=2)
    head_cfg = load_config(CLASSIFICATION / "imagenet" / "resnet50_mhead_8xb32-steplr-90e_in1k.py").model.head
    assert head_cfg.num_classes == 1000
    head = build_head(dict(head_cfg, num_classes=10), RESNET50_CHANNELS, 10)  # 10 classes: a smaller fc
    assert head.dims == {"feat1": 9216, "feat2": 9216, "feat3": 8192, "feat4": 9216, "feat5": 8192}
    assert all(head.fcs[n].in_features == d for n, d in head.dims.items())
    out = head(maps)
    assert {n: tuple(v.shape) for n, v in out.items()} == {n: (2, 10) for n in head.dims}
    avg = build_head(load_config(CLASSIFICATION / "imagenet" / "resnet50_8xb32-steplr-100e_in1k.py").model.head,
                     RESNET50_CHANNELS, 1000)
    assert avg.dims == {"avgpool": 2048} and avg(maps)["avgpool"].shape == (2, 1000)


def test_maps_of_the_wrong_width_are_refused_naming_the_layer():
    head = MultiClsHead(TINY_CHANNELS, num_classes=5)
    wrong = _maps((4, 4, 9, 16, 32), (14, 14, 7, 4, 2))
    with pytest.raises(ConfigError, match="feat3 expects 8-channel maps"):
        head(wrong)


def test_every_shipped_linear_config_loads_and_builds_its_heads():
    configs = sorted(p for p in CLASSIFICATION.rglob("*.py") if "_base_" not in p.parts and "semi" not in p.name
               and "_ft-" not in p.name)  # the fine-tuning recipes: tests/test_finetune.py
    names = {p.relative_to(CLASSIFICATION).as_posix() for p in configs}
    assert {"imagenet/resnet50_mhead_8xb32-steplr-90e_in1k.py", "imagenet/resnet50_8xb32-steplr-100e_in1k.py",
            "imagenet/resnet50_8xb32-coslr-100e_in1k.py", "places205/resnet50_mhead_8xb32-steplr-28e_places205.py",
            "inaturalist2018/resnet50_mhead_8xb32-steplr-84e_inat18.py"} <= names
    import ssl_lib.data  # noqa: F401  (registers the transforms)
    from ssl_lib.data.transforms import build_pipeline

    for path in configs:
        cfg = load_config(path)
        assert cfg.model.head.get("num_classes") in (1000, 205, 8142, 10), path  # the seed's datasets, or ours
        head = build_head(dict(cfg.model.head, num_classes=None), RESNET50_CHANNELS, 10)  # small fcs, same heads
        assert head.names and cfg.runner.max_epochs > 0 and cfg.optimizer.momentum == 0.9, path
        if "fmnist" not in path.name:
            build_pipeline(cfg.data.train.pipeline)
            build_pipeline(cfg.data.val.pipeline)


def test_head_settings_that_do_not_fit_the_backbone_or_dataset_are_refused():
    cfg = load_config(CLASSIFICATION / "imagenet" / "resnet50_mhead_8xb32-steplr-90e_in1k.py")
    with pytest.raises(ConfigError, match="feat1 is 64 channels in the config"):
        build_head(cfg.model.head, TINY_CHANNELS, 1000)
    with pytest.raises(ConfigError, match="num_classes is 1000 but the dataset has 10"):
        build_head(cfg.model.head, RESNET50_CHANNELS, 10)
    with pytest.raises(ConfigError, match="unknown keys \\['pool_size'\\]"):
        build_head(dict(cfg.model.head, pool_size=3), RESNET50_CHANNELS, 1000)


class _Images(Dataset):
    def __init__(self, n=24, classes=3, seed=0):
        gen = torch.Generator().manual_seed(seed)
        self.img = torch.randn(n, 3, 16, 16, generator=gen)
        self.label = torch.arange(n) % classes

    def __len__(self):
        return len(self.label)

    def __getitem__(self, i):
        return {"img": self.img[i], "label": int(self.label[i]), "idx": i}


def test_training_leaves_the_frozen_backbone_and_its_bn_statistics_untouched():
    backbone = build_backbone(dict(type="ResNet", depth=18, base_channels=4, stem="cifar"), None, seed=0)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    head = MultiClsHead([backbone.feat_channels(i) for i in range(5)], num_classes=3, with_avgpool=True)
    head_before = {k: v.clone() for k, v in head.state_dict().items()}
    result = train_linear(backbone, head, _Images(), _Images(12, seed=1),
                          optimizer=dict(type="SGD", lr=0.1, momentum=0.9), lr_config=dict(policy="step", step=[1]),
                          max_epochs=2, batch_size=8, device="cpu", log=lambda line: None)
    after = backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the backbone's weights or BN statistics changed"
    assert not backbone.training and all(not p.requires_grad and p.grad is None for p in backbone.parameters())
    changed = [k for k, v in head.state_dict().items() if not torch.equal(v, head_before[k])]
    assert any(k.startswith("fcs.") for k in changed) and any(k.endswith("running_mean") for k in changed)
    assert [r["epoch"] for r in result["history"]] == [1, 2] and result["history"][1]["lr"] == pytest.approx(0.01)
    assert set(result["heads"]) == set(head.names)


def test_linear_stage_trains_every_head_on_a_tiny_dataset(fmnist_tiny, tiny_backbone, tmp_path, capsys):
    out = tmp_path / "linear"
    metrics = linear(fmnist_tiny, tiny_backbone, str(out), epochs=2, cfg_options=["data.train_limit=0"])
    assert set(metrics["heads"]) == {"feat1", "feat2", "feat3", "feat4", "feat5", "avgpool"}
    assert all(0 <= h["top1"] <= h["top5"] <= 1 for h in metrics["heads"].values())
    assert metrics["best_layer"] in metrics["heads"] and metrics["num_train"] == 64 and metrics["num_test"] == 40
    assert metrics["epochs"] == 2 and len(metrics["history"]) == 2
    assert json.loads((out / "metrics.json").read_text())["heads"] == metrics["heads"]
    assert (out / "heads.pth").exists()
    epoch_lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("linear epoch")]
    assert len(epoch_lines) == 2


def test_bad_input_is_refused_before_training_and_nothing_is_written(fmnist_tiny, tiny_backbone, tmp_path,
                                                                     monkeypatch):
    import ssl_lib.stages.linear as stage

    monkeypatch.setattr(stage, "train_linear", lambda *a, **k: pytest.fail("training started on bad input"))
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="feat1 is 64 channels in the config"):
        linear(fmnist_tiny, tiny_backbone, str(out), config="benchmarks/classification/imagenet/"
               "resnet50_mhead_8xb32-steplr-90e_in1k.py", cfg_options=["model.head.num_classes=10"])
    multi = tmp_path / "multi_label"
    shutil.copytree(fmnist_tiny, multi)
    manifest = json.loads((multi / "manifest.json").read_text())
    (multi / "manifest.json").write_text(json.dumps(dict(manifest, multi_label=True)))
    with pytest.raises(ConfigError, match="multi-label"):
        linear(str(multi), tiny_backbone, str(out))
    with pytest.raises(ConfigError, match="epochs must be positive"):
        linear(fmnist_tiny, tiny_backbone, str(out), epochs=-1)
    assert not Path(out).exists()
