"""The dataset artifact read back: `ParquetShards`, one split of what the prep stage wrote.

A split whose shards fit under `SSL_DATA_IN_MEMORY_BYTES` (default 4 GiB) is read into memory
once, as Arrow arrays that DataLoader workers share after fork without copying. A larger one (an
ImageNet) stays on disk: each shard is fetched once into a local cache (`SSL_DATA_CACHE`, default
~/.cache/ssl_lib/shards) and checked against its sha256 there, then read one row group at a time;
`BlockShuffleSampler` orders the samples so that consecutive ones share row groups.
Either way every shard is checked against the sha256 in the manifest before it is used.
Labels are the `label` column (int64 class index) or, in a dataset whose manifest says
`"multi_label": true` (VOC), the `labels` column: an int8 vector of 1 / -1 / 0 per class.
"""
from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Sampler

from .. import storage
from ..errors import DataError
from ..registry import DATASOURCES
from .sources import load_manifest

DEFAULT_IN_MEMORY_BYTES = 4 << 30
ROW_GROUPS_KEPT = 8  # decoded row groups each process keeps: a sampler window's worth


def cache_dir() -> Path:
    return Path(os.environ.get("SSL_DATA_CACHE") or Path.home() / ".cache" / "ssl_lib" / "shards")


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _damaged(uri: str) -> DataError:
    return DataError(f"shard {uri} does not match the sha256 in its manifest: the dataset was modified or "
                     f"damaged; run prep again")


def fetch_shard(root: str, shard: dict, cache: Path | None = None) -> Path:
    """A local, verified file of one shard. An s3:// shard is downloaded to `cache/<sha256>.parquet`
    (content-addressed: a file there was verified when it was put there); a local one is read in
    place and hashed once, a marker in the cache remembering the size and mtime it had then."""
    cache = cache or cache_dir()
    uri = storage.join(root, shard["path"])
    if storage.is_s3(root):
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DataError(f"cannot create the shard cache {cache}: {err.strerror or err} (set SSL_DATA_CACHE "
                            f"to a writable folder)") from err
        target = cache / f"{shard['sha256']}.parquet"
        if target.is_file():
            return target
        tmp = cache / f".{target.name}.{uuid.uuid4().hex[:8]}"
        try:
            storage.download(uri, tmp)
            if _sha256_of(tmp) != shard["sha256"]:
                raise _damaged(uri)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target
    path = Path(uri).resolve()
    try:
        stat = path.stat()
    except OSError as err:
        raise DataError(f"cannot read shard {uri}: {err.strerror or err}") from err
    marker, seen = cache / f"{shard['sha256']}.verified", f"{path} {stat.st_size} {stat.st_mtime_ns}"
    if not (marker.is_file() and marker.read_text() == seen):
        if _sha256_of(path) != shard["sha256"]:
            raise _damaged(uri)
        try:  # only saves hashing it again: a read-only cache costs time, not correctness
            storage.write_text(str(marker), seen)
        except OSError:
            pass
    return path


@DATASOURCES.register_module(name="ParquetShards")
class ParquetDataset:
    """One split of a dataset written by the prep stage.

    `in_memory`: True reads every image of the split into memory, False reads row groups on demand
    from local files, None (default) chooses by the split's size against SSL_DATA_IN_MEMORY_BYTES.
    """

    def __init__(self, root: str, split: str = "train", in_memory: bool | None = None):
        import pyarrow.parquet as pq

        manifest = load_manifest(root)
        if split not in manifest["counts"]:
            raise DataError(f"dataset {root} has no split {split!r}; it has: {', '.join(manifest['counts'])}")
        self.root, self.split = root, split
        self.classes = list(manifest["classes"])
        self.multi_label = bool(manifest.get("multi_label", False))
        column = "labels" if self.multi_label else "label"
        self.shards = [s for s in manifest["shards"] if s["split"] == split]
        fs, base = storage.arrow_filesystem(root)
        if in_memory is None:
            limit = int(os.environ.get("SSL_DATA_IN_MEMORY_BYTES") or DEFAULT_IN_MEMORY_BYTES)
            size = sum(info.size or 0 for info in fs.get_file_info([f"{base}/{s['path']}" for s in self.shards]))
            in_memory = size <= limit
        self.in_memory = in_memory
        self._images, labels, self._blocks = None, [], []  # blocks: (shard, row group, first index, rows)
        self._files: dict[int, object] = {}  # open shards of this process; _row_group reopens after a pickle
        chunks = []
        for k, shard in enumerate(self.shards):
            uri = storage.join(root, shard["path"])
            try:
                if in_memory:
                    with fs.open_input_stream(f"{base}/{shard['path']}") as stream:
                        data = stream.readall()
                    if hashlib.sha256(data).hexdigest() != shard["sha256"]:
                        raise _damaged(uri)
                    table = pq.read_table(io.BytesIO(data), columns=["image", column])
                    chunks.extend(table.column("image").chunks)
                    labels.append(self._label_values(table.column(column), uri))
                    continue
                meta = self._files[k] = pq.ParquetFile(fetch_shard(root, shard), memory_map=True)
            except OSError as err:
                raise DataError(f"cannot read shard {uri}: {err}") from err
            labels.append(self._label_values(meta.read(columns=[column]).column(column), uri))
            for g in range(meta.num_row_groups):
                rows = meta.metadata.row_group(g).num_rows
                start = self._blocks[-1][2] + self._blocks[-1][3] if self._blocks else 0
                self._blocks.append((k, g, start, rows))
        if in_memory:
            import pyarrow as pa

            self._images = pa.chunked_array(chunks, pa.large_binary()).combine_chunks() if chunks else []
        empty = np.zeros((0, len(self.classes)), np.int8) if self.multi_label else np.zeros(0, np.int64)
        self._labels = np.concatenate(labels) if labels else empty
        self._starts = np.array([b[2] for b in self._blocks], dtype=np.int64)
        self._groups: OrderedDict = OrderedDict()

    def _label_values(self, column, uri: str) -> np.ndarray:
        """(N,) int64 class indices, or for a multi-label dataset (N, C) int8 of 1 / -1 / 0."""
        if not self.multi_label:
            return column.to_numpy().astype(np.int64)
        vectors = column.combine_chunks()
        num_classes = len(self.classes)
        if vectors.null_count or any(n != num_classes for n in vectors.value_lengths().to_numpy()):
            raise DataError(f"shard {uri}: a label vector is missing or not of length {num_classes} (the classes "
                            f"in its manifest)")
        return vectors.flatten().to_numpy().astype(np.int8).reshape(len(vectors), num_classes)

    def __len__(self) -> int:
        return len(self._labels)

    def __getstate__(self) -> dict:  # open files and decoded row groups stay with their process
        return dict(self.__dict__, _files={}, _groups=OrderedDict())

    def _row_group(self, b: int):
        if b in self._groups:
            self._groups.move_to_end(b)
            return self._groups[b]
        import pyarrow.parquet as pq

        k, g, _, _ = self._blocks[b]
        if k not in self._files:
            self._files[k] = pq.ParquetFile(fetch_shard(self.root, self.shards[k]), memory_map=True)
        images = self._files[k].read_row_group(g, columns=["image"]).column("image").combine_chunks()
        self._groups[b] = images
        if len(self._groups) > ROW_GROUPS_KEPT:
            self._groups.popitem(last=False)
        return images

    def get_bytes(self, i: int) -> bytes:
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} is outside the {len(self)} images of split {self.split!r}")
        if self.in_memory:
            return self._images[i].as_py()
        b = int(np.searchsorted(self._starts, i, side="right")) - 1
        return self._row_group(b)[i - self._blocks[b][2]].as_py()

    def get_image(self, i: int) -> Image.Image:
        with Image.open(io.BytesIO(self.get_bytes(i))) as img:
            return img.convert("RGB")

    def get_label(self, i: int) -> int | torch.Tensor:
        """The class index; for a multi-label dataset an int8 tensor (C,) of 1 / -1 / 0, which a
        DataLoader stacks to (B, C)."""
        if self.multi_label:
            return torch.from_numpy(self._labels[i].copy())
        return int(self._labels[i])

    @property
    def labels(self) -> np.ndarray:
        """(N,) int64, or (N, C) int8 for a multi-label dataset."""
        return self._labels

    @property
    def blocks(self) -> list[tuple[int, int]] | None:
        """(first index, rows) of each row group when read from disk; None when held in memory."""
        return None if self.in_memory else [(start, rows) for _, _, start, rows in self._blocks]


class BlockShuffleSampler(Sampler[int]):
    """DistributedSampler's contract (same length on every rank, disjoint ranks, a new order per
    `set_epoch`, the tail dropped) for data read a block (row group) at a time.

    Each epoch the blocks are shuffled into one stream, every rank takes an equal contiguous slice
    of it, and samples are shuffled within windows of `window` blocks: a sample's neighbours in the
    order come from a handful of row groups, so each row group is decoded about once per window.
    """

    def __init__(self, blocks: list[tuple[int, int]], num_replicas: int = 1, rank: int = 0, seed: int = 0,
                 window: int = ROW_GROUPS_KEPT):
        if not blocks:
            raise DataError("BlockShuffleSampler: the dataset has no row groups")
        self.blocks, self.num_replicas, self.rank, self.seed = blocks, num_replicas, rank, seed
        self.window = window * max(rows for _, rows in blocks)
        self.num_samples = sum(rows for _, rows in blocks) // num_replicas
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        shared = torch.Generator().manual_seed(self.seed + self.epoch)  # the same stream on every rank
        order = torch.randperm(len(self.blocks), generator=shared).tolist()
        stream = np.concatenate([np.arange(start, start + rows) for start, rows in (self.blocks[b] for b in order)])
        mine = stream[self.rank * self.num_samples:(self.rank + 1) * self.num_samples]
        own = torch.Generator().manual_seed((self.seed + self.epoch) * 1_000_003 + self.rank)
        for lo in range(0, len(mine), self.window):
            chunk = mine[lo:lo + self.window]
            yield from chunk[torch.randperm(len(chunk), generator=own).numpy()].tolist()
