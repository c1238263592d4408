"""ParquetShards read back in memory and from disk a row group at a time, the shard cache, and the
block-shuffling sampler that large splits train with."""
from __future__ import annotations

import collections
import json

import numpy as np
import pytest

from conftest import TINY_CONFIG
from ssl_lib import storage
from ssl_lib.data.shards import BlockShuffleSampler, ParquetDataset
from ssl_lib.errors import DataError
from ssl_lib.stages import prep as prep_module
from ssl_lib.stages.prep import prep


@pytest.fixture
def sharded(make_dataset, tmp_path, monkeypatch):
    """The tiny IDX data set in shards of 8 rows, row groups of 3: 30 train, 10 test images."""
    monkeypatch.setattr(prep_module, "ROW_GROUP_ROWS", 3)
    monkeypatch.setenv("SSL_DATA_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "ds"
    prep(str(make_dataset("idx")), str(out), shard_size=8)
    return out


def test_reading_from_disk_gives_the_same_images_and_labels_as_reading_into_memory(sharded):
    memory = ParquetDataset(str(sharded), "train", in_memory=True)
    disk = ParquetDataset(str(sharded), "train", in_memory=False)
    assert memory.in_memory and not disk.in_memory and len(disk) == len(memory) == 30
    assert disk.labels.tolist() == memory.labels.tolist()
    for i in [0, 2, 3, 7, 8, 29, 5, 1]:  # across row groups and shards, out of order
        assert disk.get_bytes(i) == memory.get_bytes(i)
    assert memory.blocks is None
    # shards of 8 rows in row groups of 3: 3 + 3 + 2 per shard, the last shard 6 rows
    assert disk.blocks == [(0, 3), (3, 3), (6, 2), (8, 3), (11, 3), (14, 2), (16, 3), (19, 3), (22, 2),
                           (24, 3), (27, 3)]
    with pytest.raises(IndexError, match="index 30 is outside the 30 images of split 'train'"):
        disk.get_bytes(30)


def test_the_split_is_read_from_disk_when_it_is_larger_than_the_memory_limit(sharded, monkeypatch):
    assert ParquetDataset(str(sharded), "test").in_memory
    monkeypatch.setenv("SSL_DATA_IN_MEMORY_BYTES", "1000")
    assert not ParquetDataset(str(sharded), "test").in_memory


def test_a_local_shard_is_hashed_once_and_again_when_it_changes(sharded, tmp_path):
    ParquetDataset(str(sharded), "train", in_memory=False)
    markers = sorted((tmp_path / "cache").glob("*.verified"))
    assert len(markers) == 4  # one per train shard
    shard = json.loads((sharded / "manifest.json").read_text())["shards"][0]
    path = sharded / shard["path"]
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=f"shard {path} does not match the sha256 in its manifest"):
        ParquetDataset(str(sharded), "train", in_memory=False)


def test_s3_shards_are_fetched_once_into_the_cache_and_checked(sharded, s3_server, tmp_path, monkeypatch):
    root = f"s3://{s3_server}/sharded"
    for name in storage.listdir(str(sharded)):
        storage.upload(sharded / name, storage.join(root, name))
    disk = ParquetDataset(root, "train", in_memory=False)
    local = ParquetDataset(str(sharded), "train", in_memory=True)
    assert [disk.get_bytes(i) for i in range(30)] == [local.get_bytes(i) for i in range(30)]
    assert len(list((tmp_path / "cache").glob("*.parquet"))) == 4

    def no_download(*args):
        raise AssertionError("a cached shard was downloaded again")

    monkeypatch.setattr(storage, "download", no_download)
    assert ParquetDataset(root, "train", in_memory=False).get_bytes(29) == local.get_bytes(29)

    monkeypatch.undo()
    monkeypatch.setenv("SSL_DATA_CACHE", str(tmp_path / "other-cache"))
    manifest = json.loads((sharded / "manifest.json").read_text())
    first = manifest["shards"][0]["path"]
    storage.write_bytes(storage.join(root, first), b"PAR1 damaged")
    with pytest.raises(DataError, match=f"shard {root}/{first} does not match the sha256"):
        ParquetDataset(root, "train", in_memory=False)
    assert not list((tmp_path / "other-cache").glob("*.parquet"))  # nothing unverified is kept


BLOCKS = [(0, 3), (3, 3), (6, 2), (8, 3), (11, 3), (14, 2), (16, 3), (19, 3), (22, 2), (24, 3), (27, 3)]


def test_block_shuffle_sampler_splits_an_epoch_into_equal_disjoint_parts_and_reshuffles_per_epoch():
    samplers = [BlockShuffleSampler(BLOCKS, num_replicas=3, rank=r, seed=1, window=2) for r in range(3)]
    parts = [list(s) for s in samplers]
    assert [len(p) for p in parts] == [len(s) for s in samplers] == [10, 10, 10]
    assert sorted(sum(parts, [])) == list(range(30))  # 30 // 3: nothing dropped, nothing twice
    assert parts == [list(s) for s in samplers]  # the same epoch gives the same order
    for s in samplers:
        s.set_epoch(1)
    assert [list(s) for s in samplers] != parts
    assert sorted(sum([list(s) for s in samplers], [])) == list(range(30))


def test_block_shuffle_sampler_keeps_neighbours_within_a_few_row_groups():
    blocks = [(i * 256, 256) for i in range(100)]
    order = list(BlockShuffleSampler(blocks, num_replicas=2, rank=1, seed=0, window=4))
    assert len(order) == 12800 and len(set(order)) == 12800
    for lo in range(0, len(order), 1024):  # each window of 4 x 256 samples spans at most 5 row groups
        assert len({i // 256 for i in order[lo:lo + 1024]}) <= 5
    assert order[:256] != sorted(order[:256])  # and is shuffled inside
    counts = collections.Counter(i // 256 for i in order)
    assert len(counts) >= 50  # the rank's half of the row groups, give or take the ones it shares


def test_training_on_a_split_read_from_disk_uses_the_block_sampler(fmnist_tiny, tmp_path, monkeypatch):
    from ssl_lib.engine.train import train

    monkeypatch.setenv("SSL_DATA_CACHE", str(tmp_path / "cache"))
    used = []
    real_init = BlockShuffleSampler.__init__

    def spy(self, *args, **kwargs):
        used.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(BlockShuffleSampler, "__init__", spy)
    metrics = train(TINY_CONFIG, fmnist_tiny, str(tmp_path / "work"),
                    ["runner.max_epochs=1", "data.train.data_source.in_memory=False"])
    assert len(used) == 1 and used[0].blocks == [(0, 64)]  # 64 images, one row group
    assert metrics["iterations"] == 4 and np.isfinite(metrics["final_loss"])


def test_an_unwritable_cache_slows_local_reads_down_but_stops_s3_reads_with_the_fix(sharded, s3_server, tmp_path,
                                                                                   monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SSL_DATA_CACHE", str(blocker / "cache"))  # cannot be created: its parent is a file
    assert len(ParquetDataset(str(sharded), "train", in_memory=False)) == 30
    root = f"s3://{s3_server}/unwritable"
    for name in storage.listdir(str(sharded)):
        storage.upload(sharded / name, storage.join(root, name))
    fix = r"cannot create the shard cache .*: Not a directory \(set SSL_DATA_CACHE to a writable folder\)"
    with pytest.raises(DataError, match=fix):
        ParquetDataset(root, "train", in_memory=False)
