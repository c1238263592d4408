"""The prep stage: shards + manifest from each raw format, skips, atomicity, reruns, S3."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ssl_lib import storage
from ssl_lib.data.datasets import MultiViewDataset
from ssl_lib.data.shards import ParquetDataset
from ssl_lib.errors import DataError
from ssl_lib.stages import prep as prep_module
from ssl_lib.stages.prep import prep

REPO = Path(__file__).resolve().parents[1]


def manifest_of(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


def test_fashion_mnist_subset_reads_back_as_two_28px_views(tmp_path):
    metrics = prep("fashion-mnist", str(tmp_path / "fm"), train_limit=50, test_limit=20, shard_size=32)
    assert metrics == {"num_train": 50, "num_test": 20, "num_classes": 10, "num_skipped": 0,
                       "manifest": str(tmp_path / "fm" / "manifest.json")}
    manifest = manifest_of(tmp_path / "fm")
    assert [s["path"] for s in manifest["shards"]] == ["shards/train-00000.parquet", "shards/train-00001.parquet",
                                                       "shards/test-00000.parquet"]
    assert manifest["classes"][9] == "Ankle boot"
    pipeline = [dict(type="RandomResizedCrop", size=28, scale=(0.5, 1.0)), dict(type="RandomHorizontalFlip"),
                dict(type="ToTensor")]
    dataset = MultiViewDataset(dict(type="ParquetShards", root=str(tmp_path / "fm"), split="train"), [2], [pipeline])
    item = dataset[7]
    assert len(dataset) == 50 and [v.shape for v in item["img"]] == [(3, 28, 28)] * 2
    assert sorted(set(dataset.data_source.labels.tolist())) == list(range(10))


def test_corrupt_and_truncated_images_are_skipped_with_reasons_and_the_rest_ingested(make_dataset, tmp_path):
    metrics = prep(str(make_dataset("folder")), str(tmp_path / "ds"), test_fraction=0.0)
    assert (metrics["num_train"], metrics["num_test"], metrics["num_skipped"]) == (9, 0, 2)
    skipped = {s["input"]: s["reason"] for s in manifest_of(tmp_path / "ds")["skipped"]}
    assert set(skipped) == {"cat/x.jpg", "dog/broken.jpg"}
    assert "not an image format" in skipped["cat/x.jpg"]
    assert "truncated" in skipped["dog/broken.jpg"].lower()
    assert len(ParquetDataset(str(tmp_path / "ds"), "train")) == 9


def test_list_files_give_splits_and_a_missing_file_is_skipped(make_dataset, tmp_path):
    metrics = prep(str(make_dataset("list")), str(tmp_path / "ds"))
    manifest = manifest_of(tmp_path / "ds")
    assert (metrics["num_train"], metrics["num_test"]) == (6, 2)
    assert manifest["classes"] == ["cat", "dog", "owl"]
    assert [s["input"] for s in manifest["skipped"]] == ["images/cat/missing.png"]
    assert ParquetDataset(str(tmp_path / "ds"), "test").labels.tolist() == [0, 2]


def test_missing_source_is_a_data_error_and_publishes_nothing(tmp_path):
    with pytest.raises(DataError, match=f"dataset path not found: {tmp_path / 'nope'}"):
        prep(str(tmp_path / "nope"), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_cli_reports_a_missing_source_as_one_error_line_and_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ssl_lib.stages.prep", "--source", str(tmp_path / "nope"),
                           "--output", str(tmp_path / "out")], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: dataset path not found: {tmp_path / 'nope'}"]
    assert proc.stdout == ""


def test_cli_prints_metrics_json(make_dataset, tmp_path, capsys):
    parser = prep_module.build_parser()
    assert parser.format_help().startswith("usage: python -m ssl_lib.stages.prep")
    argv = ["--source", str(make_dataset("idx")), "--output", str(tmp_path / "out"), "--train-limit", "10"]
    assert prep_module.run_cli(parser, prep, argv) == 0
    assert json.loads(capsys.readouterr().out)["num_train"] == 10


def test_no_valid_images_is_a_data_error_and_publishes_nothing(tmp_path):
    (tmp_path / "src" / "cat").mkdir(parents=True)
    (tmp_path / "src" / "cat" / "a.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError, match="no valid images.*cat/a.jpg"):
        prep(str(tmp_path / "src"), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_rerun_on_complete_output_is_a_noop(make_dataset, tmp_path, monkeypatch):
    source, out = str(make_dataset("folder")), str(tmp_path / "ds")
    first = prep(source, out)
    stamp = (tmp_path / "ds" / "manifest.json").stat().st_mtime_ns

    def must_not_run(*args, **kwargs):
        raise AssertionError("rerun read the source again")

    monkeypatch.setattr(prep_module, "source_from_uri", must_not_run)
    assert prep(source, out) == first
    assert (tmp_path / "ds" / "manifest.json").stat().st_mtime_ns == stamp


def test_rerun_with_other_params_or_changed_source_rebuilds(make_dataset, tmp_path):
    source, out = make_dataset("idx"), str(tmp_path / "ds")
    assert prep(str(source), out, train_limit=10)["num_train"] == 10
    assert prep(str(source), out, train_limit=20)["num_train"] == 20
    labels = source / "t10k-labels-idx1-ubyte"
    before = labels.stat().st_mtime_ns
    labels.write_bytes(labels.read_bytes()[:-1] + b"\x01")
    os.utime(labels, ns=(before + 10**9, before + 10**9))  # a coarse clock could leave mtime unchanged
    prep(str(source), out, train_limit=20)
    assert ParquetDataset(out, "test").labels.tolist()[-1] == 1


def test_same_inputs_give_byte_identical_shards(make_dataset, tmp_path):
    source = str(make_dataset("folder"))
    prep(source, str(tmp_path / "a"), shard_size=4)
    prep(source, str(tmp_path / "b"), shard_size=4)
    a, b = manifest_of(tmp_path / "a"), manifest_of(tmp_path / "b")
    assert len(a["shards"]) > 2 and a["shards"] == b["shards"]
    assert a == b


def test_prep_from_and_to_s3_reads_back_through_parquet_shards(make_dataset, s3_server, tmp_path):
    local = make_dataset("split_folder")
    for name in storage.listdir(str(local)):
        storage.upload(local / name, f"s3://{s3_server}/raw/{name}")
    out = f"s3://{s3_server}/ds"
    metrics = prep(f"s3://{s3_server}/raw", out)
    assert (metrics["num_train"], metrics["num_test"], metrics["manifest"]) == (9, 3, f"{out}/manifest.json")
    assert storage.is_complete(out)
    test = ParquetDataset(out, "test")
    assert test.labels.tolist() == [0, 1, 2] and test.get_image(0).getpixel((0, 0))[0] > 200
    assert prep(f"s3://{s3_server}/raw", out) == metrics


def test_missing_s3_source_is_a_data_error_naming_it(s3_server, tmp_path):
    with pytest.raises(DataError, match=f"dataset path not found: s3://{s3_server}/absent"):
        prep(f"s3://{s3_server}/absent", str(tmp_path / "out"))


def test_s3_rerun_interrupted_mid_upload_leaves_output_incomplete_then_recovers(make_dataset, s3_server,
                                                                                 monkeypatch):
    source, out = str(make_dataset("idx")), f"s3://{s3_server}/interrupted"
    prep(source, out, train_limit=10)
    real_upload, calls = storage.upload, []

    def upload_then_die(local, uri):
        calls.append(uri)
        if len(calls) > 1:
            raise ConnectionError("network dropped")
        real_upload(local, uri)

    monkeypatch.setattr(storage, "upload", upload_then_die)
    with pytest.raises(ConnectionError):
        prep(source, out, train_limit=20)
    assert not storage.is_complete(out)
    with pytest.raises(DataError, match="not fully published"):
        ParquetDataset(out, "train")
    monkeypatch.setattr(storage, "upload", real_upload)
    assert prep(source, out, train_limit=20)["num_train"] == 20
    assert len(ParquetDataset(out, "train")) == 20


def _die_after(monkeypatch, n: int) -> list:
    """Make storage.upload fail from its (n+1)-th call on, as a killed pod would stop writing."""
    real_upload, calls = storage.upload, []

    def upload(local, uri):
        calls.append(uri)
        if len(calls) > n:
            raise ConnectionError("killed")
        real_upload(local, uri)

    monkeypatch.setattr(storage, "upload", upload)
    return calls


def test_interrupted_prep_resumes_after_its_last_shard_and_matches_an_uninterrupted_run(
        make_dataset, tmp_path, monkeypatch, capsys):
    source = str(make_dataset("folder"))  # 9 images and 2 bad ones, in two splits
    prep(source, str(tmp_path / "whole"), shard_size=2, test_fraction=0.3)
    whole = manifest_of(tmp_path / "whole")
    assert len(whole["shards"]) >= 4 and whole["skipped"]

    out = tmp_path / "cut"
    _die_after(monkeypatch, 2)
    with pytest.raises(ConnectionError):
        prep(source, str(out), shard_size=2, test_fraction=0.3)
    assert not storage.is_complete(str(out)) and (out / prep_module.JOURNAL).is_file()
    with pytest.raises(DataError, match="not fully published"):
        ParquetDataset(str(out), "train")

    monkeypatch.undo()
    calls = _die_after(monkeypatch, 1000)
    prep(source, str(out), shard_size=2, test_fraction=0.3)
    assert "prep: resuming" in capsys.readouterr().err
    assert len(calls) == len(whole["shards"]) - 2  # the two shards written before the cut are kept
    assert manifest_of(out) == whole
    assert not (out / prep_module.JOURNAL).exists()
    for shard in whole["shards"]:
        assert (out / shard["path"]).read_bytes() == (tmp_path / "whole" / shard["path"]).read_bytes()


def test_resume_passes_over_inputs_already_in_shards_without_reading_them(make_dataset, tmp_path, monkeypatch,
                                                                         capsys):
    source, out = str(make_dataset("idx")), str(tmp_path / "ds")  # train inputs first, then test
    _die_after(monkeypatch, 2)
    with pytest.raises(ConnectionError):
        prep(source, out, shard_size=4, train_limit=20)
    monkeypatch.undo()
    assert prep(source, out, shard_size=4, train_limit=20)["num_train"] == 20
    assert f"prep: resuming {out} at input 8 of 30 (2 shards already written)" in capsys.readouterr().err


def test_a_journal_of_other_parameters_is_not_resumed(make_dataset, tmp_path, monkeypatch):
    source, out = str(make_dataset("idx")), tmp_path / "ds"
    _die_after(monkeypatch, 1)
    with pytest.raises(ConnectionError):
        prep(source, str(out), shard_size=4, train_limit=20)
    monkeypatch.undo()
    assert prep(source, str(out), shard_size=4, train_limit=10)["num_train"] == 10
    assert sorted(p.name for p in (out / "shards").iterdir()) == [
        "test-00000.parquet", "test-00001.parquet", "test-00002.parquet",
        "train-00000.parquet", "train-00001.parquet", "train-00002.parquet"]
    assert [len(ParquetDataset(str(out), split)) for split in ("train", "test")] == [10, 10]


def test_a_failing_rebuild_leaves_the_complete_dataset_in_place(make_dataset, tmp_path):
    out = str(tmp_path / "ds")
    prep(str(make_dataset("folder")), out)
    (tmp_path / "junk" / "a").mkdir(parents=True)
    (tmp_path / "junk" / "a" / "x.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError, match="no valid images"):
        prep(str(tmp_path / "junk"), out)
    assert storage.is_complete(out) and len(ParquetDataset(out, "train")) > 0


def test_s3_sources_stream_image_by_image_without_a_local_copy(make_dataset, s3_server, monkeypatch):
    local = make_dataset("list")  # .../list/train.txt, val.txt, images/<class>/...
    raw = f"s3://{s3_server}/streamed"
    for name in storage.listdir(str(local.parent)):
        storage.upload(local.parent / name, f"{raw}/{name}")

    def no_download(*args):
        raise AssertionError("the source was copied to local disk")

    real_read, reads = storage.read_bytes, []

    def read_bytes(uri):
        reads.append(uri)
        if uri.endswith("images/dog/1.jpg"):
            raise ConnectionError("connection reset by peer")
        return real_read(uri)

    monkeypatch.setattr(storage, "download", no_download)
    monkeypatch.setattr(storage, "read_bytes", read_bytes)
    out = f"s3://{s3_server}/streamed-ds"
    metrics = prep(f"{raw}/train.txt", out)
    assert (metrics["num_train"], metrics["num_test"]) == (5, 2)
    skipped = {s["input"]: s["reason"] for s in json.loads(storage.read_text(metrics["manifest"]))["skipped"]}
    assert skipped["images/dog/1.jpg"] == "cannot read file: ConnectionError: connection reset by peer"
    assert "file not found" in skipped["images/cat/missing.png"]
    assert sum(u.startswith(f"{raw}/images/") for u in reads) == 8  # each listed image read once


def test_fashion_mnist_mosaic_is_generated_and_read_back_as_label_vectors(tmp_path, monkeypatch, capsys):
    import torch
    from torch.utils.data import DataLoader

    from ssl_lib.data.datasets import SingleViewDataset
    from ssl_lib.data.mosaic import MOSAIC_CLASSES

    out = str(tmp_path / "mosaic")
    metrics = prep("fashion-mnist-mosaic", out, train_limit=30, test_limit=30, mosaic_size=64, shard_size=16)
    err = capsys.readouterr().err
    assert "generating the Fashion-MNIST mosaic (30 trainval + 30 test images, 64 px, seed 0)" in err
    assert (metrics["num_train"], metrics["num_test"], metrics["num_classes"]) == (30, 30, 10)
    manifest = manifest_of(tmp_path / "mosaic")
    assert manifest["multi_label"] is True and manifest["classes"] == list(MOSAIC_CLASSES)
    assert manifest["params"]["mosaic_size"] == 64 and manifest["source"] == "fashion-mnist-mosaic"
    train = ParquetDataset(out, "train")
    assert train.labels.shape == (30, 10) and train.labels.dtype.name == "int8"
    assert set(train.labels.ravel().tolist()) == {1, -1, 0} and (train.labels == 1).any(0).all()
    dataset = SingleViewDataset(dict(type="ParquetShards", root=out, split="test"), [dict(type="ToTensor")])
    batch = next(iter(DataLoader(dataset, batch_size=8)))
    assert batch["img"].shape == (8, 3, 64, 64) and batch["label"].shape == (8, 10)
    assert batch["label"].dtype == torch.int8
    assert batch["label"].tolist() == ParquetDataset(out, "test").labels[:8].tolist()

    def must_not_generate(*args, **kwargs):
        raise AssertionError("the rerun generated the mosaic again")

    monkeypatch.setattr(prep_module.mosaic, "generate", must_not_generate)
    assert prep("fashion-mnist-mosaic", out, train_limit=30, test_limit=30, mosaic_size=64, shard_size=16) == metrics


def test_interrupted_mosaic_prep_resumes_to_the_same_multi_label_dataset(tmp_path, monkeypatch):
    args = dict(train_limit=30, test_limit=30, mosaic_size=64, shard_size=8)
    prep("fashion-mnist-mosaic", str(tmp_path / "whole"), **args)
    _die_after(monkeypatch, 2)
    with pytest.raises(ConnectionError):
        prep("fashion-mnist-mosaic", str(tmp_path / "cut"), **args)
    monkeypatch.undo()
    prep("fashion-mnist-mosaic", str(tmp_path / "cut"), **args)
    assert manifest_of(tmp_path / "cut") == manifest_of(tmp_path / "whole")


def test_mosaic_parameters_are_checked_before_anything_is_generated(tmp_path):
    from ssl_lib.errors import ConfigError

    with pytest.raises(ConfigError, match="size must be in"):
        prep("fashion-mnist-mosaic", str(tmp_path / "out"), mosaic_size=8)
    assert not (tmp_path / "out").exists()
