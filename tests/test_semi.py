"""The semi-supervised protocol: class-balanced seeded subsets and list-file subsets, the head's
learning rate multiplier, a backbone that is fine-tuned (not frozen), the stage's grid and best
setting, and bad input refused before any training."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ssl_lib.benchmarks.features import load_backbone
from ssl_lib.benchmarks.semi import (FineTuneClassifier, LabelledImages, balanced_subset, build_optimizer, fine_tune,
                                     subset_from_list)
from ssl_lib.data import ParquetDataset, SingleViewDataset
from ssl_lib.errors import ConfigError, DataError
from ssl_lib.stages import semi as semi_stage
from ssl_lib.stages._cli import run_cli

CLASSES = ["cat", "dog", "owl"]
TRAIN_PIPELINE = [dict(type="RandomResizedCrop", size=28, scale=(0.3, 1.0)), dict(type="RandomHorizontalFlip"),
                  dict(type="ToTensor")]


def test_balanced_subsets_take_the_same_number_from_every_class_and_repeat_with_the_seed():
    labels = np.repeat([0, 1, 2], [100, 60, 140])  # 300 images, classes of unequal size
    small = balanced_subset(labels, 0.1, CLASSES, seed=0)
    assert np.bincount(labels[small]).tolist() == [10, 10, 10]
    assert np.array_equal(small, balanced_subset(labels, 0.1, CLASSES, seed=0))
    assert not np.array_equal(small, balanced_subset(labels, 0.1, CLASSES, seed=1))
    large = balanced_subset(labels, 0.5, CLASSES, seed=0)
    assert np.bincount(labels[large]).tolist() == [50, 50, 50] and len(np.unique(large)) == 150
    assert set(small) <= set(large)  # a class's shuffle depends on the seed and the class only
    first_ten = np.concatenate([np.flatnonzero(labels == c)[:10] for c in range(3)])
    assert not np.array_equal(small, np.sort(first_ten))  # shuffled within the class, not the first images


def test_a_fraction_that_gives_no_image_per_class_is_refused():
    with pytest.raises(ConfigError, match=r"fraction 0.001 of 300 train images over 3 classes gives 0 images per "
                                          r"class; use a fraction of at least 0.005"):
        balanced_subset(np.repeat([0, 1, 2], 100), 0.001, CLASSES)


def test_a_class_with_too_few_images_is_named():
    labels = np.array([0] * 50 + [1] * 50 + [2] * 2)
    with pytest.raises(DataError, match=r"class 'owl' has 2 train image\(s\); fraction 0.2 takes 7 from every class"):
        balanced_subset(labels, 0.2, CLASSES)


NAMES = ["train/n01/n01_1.JPEG", "train/n01/n01_2.JPEG", "train/n02/n02_1.JPEG", "train/n02/n02_7.JPEG"]


def test_a_list_file_gives_exactly_the_images_it_names(tmp_path):
    listed = tmp_path / "train_1percent.txt"
    # the seed's format (path under the train folder, label), the prepared name, a bare file name, an id
    listed.write_text("n01/n01_2.JPEG 0\ntrain/n02/n02_7.JPEG 1\n\nn01_2.JPEG\nn02_1\n")
    assert subset_from_list(NAMES, str(listed)).tolist() == [1, 2, 3]


def test_a_list_file_naming_an_image_the_dataset_lacks_is_refused_naming_it(tmp_path):
    listed = tmp_path / "train_1percent.txt"
    listed.write_text("n01/n01_2.JPEG 0\nn03/n03_5.JPEG 2\n")
    with pytest.raises(DataError, match=rf"{listed} names 1 image\(s\) that the train split does not have: "
                                        r"n03/n03_5.JPEG"):
        subset_from_list(NAMES, str(listed))
    with pytest.raises(DataError, match="cannot read the subset list"):
        subset_from_list(NAMES, str(tmp_path / "absent.txt"))


def test_the_head_learns_at_lr_times_its_multiplier(tiny_backbone):
    backbone, _ = load_backbone(tiny_backbone)
    model = FineTuneClassifier(backbone, 64, 10)
    optimizer = build_optimizer(model, lr=0.01, head_lr_mult=100, momentum=0.9, weight_decay=5e-4)
    backbone_group, head_group = optimizer.param_groups
    assert backbone_group["lr"] == 0.01 and head_group["lr"] == pytest.approx(1.0)
    assert {id(p) for p in head_group["params"]} == {id(model.head.weight), id(model.head.bias)}
    assert {id(p) for p in backbone_group["params"]} == {id(p) for p in backbone.parameters()}
    assert all(g["momentum"] == 0.9 and g["weight_decay"] == 5e-4 for g in optimizer.param_groups)


def test_fine_tuning_changes_the_backbone_weights_and_bn_statistics(tiny_backbone, fmnist_tiny):
    backbone, _ = load_backbone(tiny_backbone)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    source = ParquetDataset(fmnist_tiny, "train")
    labelled = SingleViewDataset(data_source=LabelledImages(source, np.arange(16)), pipeline=TRAIN_PIPELINE)
    assert [labelled[i]["label"] for i in range(16)] == source.labels[:16].tolist()
    model = FineTuneClassifier(backbone, 64, 10)
    fine_tune(model, labelled, lr=0.1, head_lr_mult=1, epochs=1, milestones=[1], gamma=0.2, momentum=0.9,
              weight_decay=5e-4, batch_size=8, device=torch.device("cpu"))
    after = model.backbone.state_dict()
    assert not torch.equal(before["conv1.weight"], after["conv1.weight"])
    assert not torch.equal(before["layer4.1.conv2.weight"], after["layer4.1.conv2.weight"])
    assert not torch.equal(before["bn1.running_mean"], after["bn1.running_mean"])  # BN in train mode


def run_stage(argv: list[str]) -> int:
    return run_cli(semi_stage.build_parser(), semi_stage.semi, argv)


def test_the_stage_writes_every_setting_of_the_grid_and_the_best_one(fmnist_tiny, tiny_backbone, tmp_path, capsys):
    names = semi_stage.split_names(fmnist_tiny, "train")
    listed = tmp_path / "few.txt"
    listed.write_text(f"{names[5]} 3\n{names[9].split('/')[-1]}\n{names[20]}\n")
    out = tmp_path / "semi"
    assert run_stage(["--dataset", fmnist_tiny, "--backbone", tiny_backbone, "--output", str(out),
                      "--fractions", "0.05", "0.3", "--lrs", "0.1", "0.01", "--head-lr-mults", "1", "10",
                      "--epochs", "1", "--subset-files", f"0.05={listed}"]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert json.loads(printed[printed.index("{\n"):]) == metrics
    assert metrics["protocol"] == "semi" and list(metrics["fractions"]) == ["0.05", "0.3"]
    assert metrics["epochs"] == 1 and metrics["milestones"] == [1]  # the config's [3, 4] of 5 epochs, scaled
    for key, res in metrics["fractions"].items():
        assert [(row["lr"], row["head_lr_mult"]) for row in res["grid"]] == [(0.1, 1), (0.1, 10), (0.01, 1), (0.01, 10)]
        best = max(res["grid"], key=lambda row: row["top1"])
        assert res["best"] == {k: best[k] for k in ("lr", "head_lr_mult", "top1", "top5")}
        assert all(0 <= row["top1"] <= row["top5"] <= 1 and row["epochs_run"] == 1 for row in res["grid"])
    assert metrics["fractions"]["0.05"]["num_labelled"] == 3
    assert metrics["fractions"]["0.05"]["subset"] == str(listed)
    assert (out / "subsets" / "0.05.txt").read_text().split("\n")[:3] == [
        f"{names[i]} {label}" for i, label in zip((5, 9, 20), ParquetDataset(fmnist_tiny, "train").labels[[5, 9, 20]])]
    balanced = metrics["fractions"]["0.3"]
    assert balanced["subset"] == "balanced" and balanced["per_class"] == 2 and balanced["num_labelled"] == 20
    assert printed.count("semi 0.3 lr=") == 4  # one line per setting


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started before the input was checked")

    monkeypatch.setattr(semi_stage, "run_grid", refuse)


def test_bad_input_is_refused_before_training_and_nothing_is_written(fmnist_tiny, tiny_backbone, tmp_path,
                                                                     no_training):
    from test_voc import make_voc

    from ssl_lib.stages.prep import prep

    out = tmp_path / "semi"
    common = dict(dataset=fmnist_tiny, backbone=tiny_backbone, output=str(out))
    with pytest.raises(ConfigError, match="fraction 0.01 of 64 train images over 10 classes gives 0 images per class"):
        semi_stage.semi(**common)  # the default 1% of 64 images
    missing = tmp_path / "list.txt"
    missing.write_text("train/00001\ntrain/99999 3\n")
    with pytest.raises(DataError, match="does not have: train/99999"):
        semi_stage.semi(**common, fractions=[0.1], subset_files=[f"0.1={missing}"])
    with pytest.raises(ConfigError, match=r"subset file is given for fraction 0.5, which is not among the fractions"):
        semi_stage.semi(**common, fractions=[0.1], subset_files={0.5: str(missing)})
    with pytest.raises(ConfigError, match=r"fractions must be in \(0, 1\]"):
        semi_stage.semi(**common, fractions=[10])
    with pytest.raises(ConfigError, match="head_lr_mults must be positive"):
        semi_stage.semi(**common, head_lr_mults=[-1])
    voc = tmp_path / "voc_ds"
    prep(str(make_voc(tmp_path / "VOCdevkit" / "VOC2007").parent), str(voc))
    with pytest.raises(ConfigError, match=rf"dataset {voc} is multi-label"):
        semi_stage.semi(dataset=str(voc), backbone=tiny_backbone, output=str(out), fractions=[0.5])
    assert not Path(out).exists()


@pytest.mark.parametrize("pct, weight_decay", [(1, 5e-4), (10, 1e-4)])
def test_the_imagenet_configs_are_the_seeds_grid_and_schedule(pct, weight_decay):
    from ssl_lib.config import load_config

    cfg = load_config(f"benchmarks/classification/imagenet/resnet50_semi_4xb64-steplr-20e_in1k-{pct}pct.py")
    s = semi_stage._settings(cfg, None, None, None, None, None)
    assert (s["lrs"], s["head_lr_mults"], s["epochs"], s["milestones"], s["gamma"]) == (
        [0.1, 0.01, 0.001], [1, 10, 100], 20, [12, 16], 0.2)
    assert (s["momentum"], s["weight_decay"], s["batch_size"]) == (0.9, weight_decay, 256)
    assert s["subset_files"] == {f"{pct / 100:g}": f"data/imagenet/meta/train_{pct}percent.txt"}
    assert [t["type"] for t in cfg.train_pipeline][:2] == ["RandomResizedCrop", "RandomHorizontalFlip"]


def test_the_cpu_config_is_the_seeds_schedule_one_parameter_away():
    from ssl_lib.config import load_config

    cfg = load_config(semi_stage.DEFAULT_CONFIG)
    assert semi_stage._settings(cfg, None, None, None, 20, None)["milestones"] == [12, 16]
    assert len(cfg.semi.lrs) * len(cfg.semi.head_lr_mults) == 9
