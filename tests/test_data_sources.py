"""Raw sources, transforms, datasets and Parquet shards read back."""
from __future__ import annotations

import collections
import json

import numpy as np
import pytest
import torch
from PIL import Image

import ssl_lib.data  # noqa: F401  (registration)
from ssl_lib import storage
from ssl_lib.data.datasets import MultiViewDataset, SingleViewDataset
from ssl_lib.data.shards import ParquetDataset
from ssl_lib.data.sources import (FASHION_MNIST_DIR, FashionMNIST, balanced_first, holdout_split, read_idx,
                                  source_from_uri)
from ssl_lib.data.transforms import build_pipeline
from ssl_lib.errors import ConfigError, DataError
from ssl_lib.registry import DATASETS, DATASOURCES, PIPELINES, build
from ssl_lib.stages.prep import prep


def test_balanced_first_takes_equal_share_per_class_in_original_order():
    labels = np.array([0, 0, 0, 0, 1, 2, 1, 2, 0])
    chosen = balanced_first(labels, 5)
    assert list(chosen) == sorted(chosen)
    assert collections.Counter(labels[chosen]) == {0: 2, 1: 2, 2: 1}
    assert list(balanced_first(labels, 5)) == list(chosen)
    assert len(balanced_first(labels, 0)) == len(labels)


def test_idx_files_parse_gzipped_and_plain(make_dataset):
    root = make_dataset("idx")
    train = read_idx(root / "train-images-idx3-ubyte.gz")
    test = read_idx(root / "t10k-labels-idx1-ubyte")
    assert train.shape == (30, 28, 28) and train.dtype == np.uint8
    assert list(test) == list(range(10))


def test_idx_with_wrong_length_is_a_data_error_naming_the_file(tmp_path):
    bad = tmp_path / "bad-idx1-ubyte"
    bad.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]))
    with pytest.raises(DataError, match="bad-idx1-ubyte"):
        read_idx(bad)


def test_fashion_mnist_folder_is_recognised_and_limited_per_class(make_dataset):
    source = source_from_uri(str(make_dataset("idx")), train_limit=20, test_limit=5)
    assert isinstance(source, FashionMNIST) and source.classes[0] == "T-shirt/top"
    samples = list(source)
    assert len(samples) == len(source) == 25
    train = [s for s in samples if s[3] == "train"]
    assert collections.Counter(s[2] for s in train) == {k: 2 for k in range(10)}
    assert samples[0][0] == "train/00000" and samples[0][1].shape == (28, 28)


def test_installed_fashion_mnist_has_60000_train_and_10000_test_images():
    source = FashionMNIST(FASHION_MNIST_DIR)
    assert len(source) == 70000 and len(source.classes) == 10


def test_class_folders_become_sorted_classes_with_stable_holdout(make_dataset):
    source = source_from_uri(str(make_dataset("split_folder") / "train"), test_fraction=0.5)
    assert source.classes == ["cat", "dog", "owl"]
    splits = {name: split for name, _, _, split in source}
    assert splits == {name: holdout_split(name, 0.5) for name in splits}
    assert set(splits.values()) == {"train", "test"}


def test_train_and_val_subfolders_become_train_and_test_splits(make_dataset):
    source = source_from_uri(str(make_dataset("split_folder")))
    samples = list(source)
    assert collections.Counter(s[3] for s in samples) == {"train": 9, "test": 3}
    assert ("val/owl/0.png", 2, "test") in {(n, label, split) for n, _, label, split in samples}


def test_list_file_with_val_sibling_names_classes_by_folder_and_skips_missing(make_dataset):
    source = source_from_uri(str(make_dataset("list")))
    samples = list(source)
    assert source.classes == ["cat", "dog", "owl"]
    assert collections.Counter(s[3] for s in samples) == {"train": 6, "test": 2}
    assert source.skipped == [{"input": "images/cat/missing.png", "reason": source.skipped[0]["reason"]}]
    assert "not found" in source.skipped[0]["reason"]


def test_seed_imagenet_layout_reads_meta_lists_for_train_and_flat_val(tmp_path):
    root = tmp_path / "imagenet"
    for rel in ("train/n01/a.JPEG", "train/n01/b.JPEG", "train/n02/c.JPEG", "val/v1.JPEG", "val/v2.JPEG"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(root / rel, format="JPEG")
    (root / "meta").mkdir()
    (root / "meta" / "train.txt").write_text("n01/a.JPEG 0\nn01/b.JPEG 0\nn02/c.JPEG 1\n")
    (root / "meta" / "val.txt").write_text("v1.JPEG 1\nv2.JPEG 0\n")
    source = source_from_uri(str(root))
    assert source.classes == ["n01", "n02"]
    assert [(name, label, split) for name, _, label, split in source] == [
        ("train/n01/a.JPEG", 0, "train"), ("train/n01/b.JPEG", 0, "train"), ("train/n02/c.JPEG", 1, "train"),
        ("val/v1.JPEG", 1, "test"), ("val/v2.JPEG", 0, "test")]


def test_missing_dataset_path_is_a_data_error_naming_it(tmp_path):
    with pytest.raises(DataError, match=f"dataset path not found: {tmp_path / 'nope'}"):
        source_from_uri(str(tmp_path / "nope"))


def test_seed_mocov2_pipeline_gives_two_normalised_views(make_dataset, tmp_path):
    prep(str(make_dataset("folder")), str(tmp_path / "ds"), test_fraction=0.0)
    pipeline = [
        dict(type="RandomResizedCrop", size=16, scale=(0.2, 1.0)),
        dict(type="RandomAppliedTrans", transforms=[dict(type="ColorJitter", brightness=0.4, contrast=0.4,
                                                         saturation=0.4, hue=0.1)], p=0.8),
        dict(type="RandomGrayscale", p=0.2),
        dict(type="GaussianBlur", sigma_min=0.1, sigma_max=2.0, p=0.5),
        dict(type="RandomHorizontalFlip"),
        dict(type="ToTensor"),
        dict(type="Normalize", mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ]
    dataset = build(dict(type="MultiViewDataset",
                         data_source=dict(type="ParquetShards", root=str(tmp_path / "ds"), split="train"),
                         num_views=[2, 1], pipelines=[pipeline, pipeline[:1] + pipeline[-2:]]), DATASETS)
    item = dataset[0]
    assert len(dataset) == 9 and len(item["img"]) == 3
    assert all(v.shape == (3, 16, 16) and v.dtype == torch.float32 for v in item["img"])
    assert item["label"] == dataset.data_source.get_label(0)


def test_single_view_eval_pipeline_resizes_and_center_crops(make_dataset, tmp_path):
    prep(str(make_dataset("folder")), str(tmp_path / "ds"), test_fraction=0.0)
    dataset = SingleViewDataset(dict(type="ParquetShards", root=str(tmp_path / "ds"), split="train"),
                                [dict(type="Resize", size=12), dict(type="CenterCrop", size=10), dict(type="ToTensor")])
    assert dataset[3]["img"].shape == (3, 10, 10)
    assert sorted(set(dataset.data_source.labels.tolist())) == [0, 1, 2]


def test_gaussian_blur_applies_only_with_its_probability():
    img = Image.new("RGB", (9, 9), (0, 0, 0))
    img.putpixel((4, 4), (255, 255, 255))
    never = build(dict(type="GaussianBlur", sigma_min=1.0, sigma_max=2.0, p=0.0), PIPELINES)
    always = build(dict(type="GaussianBlur", sigma_min=1.0, sigma_max=2.0, p=1.0), PIPELINES)
    assert never(img).tobytes() == img.tobytes()
    assert always(img).getpixel((4, 4))[0] < 255 and always(img).getpixel((3, 4))[0] > 0


def test_unknown_transform_type_is_a_config_error_listing_known_ones():
    with pytest.raises(ConfigError, match="RandomResizedCrop"):
        build_pipeline([dict(type="RandomResizedCrops", size=4)])


def test_num_views_without_one_pipeline_each_is_a_config_error():
    with pytest.raises(ConfigError, match="num_views"):
        MultiViewDataset(dict(type="ParquetShards", root="unused"), [2, 2], [[]])


def test_shards_are_read_back_and_match_manifest(make_dataset, tmp_path):
    prep(str(make_dataset("idx")), str(tmp_path / "ds"))
    train = build(dict(type="ParquetShards", root=str(tmp_path / "ds"), split="train"), DATASOURCES)
    assert isinstance(train, ParquetDataset) and len(train) == 30
    assert train.get_image(0).mode == "RGB" and train.get_image(0).size == (28, 28)
    assert collections.Counter(train.labels.tolist()) == {k: 3 for k in range(10)}
    assert len(train.classes) == 10


def test_dataset_without_success_marker_is_a_data_error_naming_the_manifest(make_dataset, tmp_path):
    prep(str(make_dataset("idx")), str(tmp_path / "ds"))
    (tmp_path / "ds" / storage.SUCCESS).unlink()
    with pytest.raises(DataError, match=str(tmp_path / "ds" / "manifest.json")):
        ParquetDataset(str(tmp_path / "ds"), "train")
    with pytest.raises(DataError, match="manifest.json"):
        ParquetDataset(str(tmp_path / "empty"), "train")


def test_tampered_shard_fails_its_sha256_check(make_dataset, tmp_path):
    prep(str(make_dataset("idx")), str(tmp_path / "ds"))
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    shard = tmp_path / "ds" / manifest["shards"][0]["path"]
    shard.write_bytes(shard.read_bytes() + b"\0")
    with pytest.raises(DataError, match="sha256"):
        ParquetDataset(str(tmp_path / "ds"), "train")


def test_unknown_split_is_a_data_error_listing_the_splits(make_dataset, tmp_path):
    prep(str(make_dataset("idx")), str(tmp_path / "ds"))
    with pytest.raises(DataError, match="train, test"):
        ParquetDataset(str(tmp_path / "ds"), "val")


def test_single_label_datasets_keep_int_labels_and_say_they_are_not_multi_label(make_dataset, tmp_path):
    prep(str(make_dataset("idx")), str(tmp_path / "ds"))
    assert json.loads((tmp_path / "ds" / "manifest.json").read_text())["multi_label"] is False
    train = ParquetDataset(str(tmp_path / "ds"), "train")
    assert not train.multi_label and train.labels.dtype == np.int64 and train.labels.shape == (30,)
    label = SingleViewDataset(train, [dict(type="ToTensor")])[4]["label"]
    assert type(label) is int and label == 4
