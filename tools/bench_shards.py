"""Reading a prepared split: held in memory against read from disk a row group at a time, in the
order BlockShuffleSampler gives and in a uniformly random order (what a plain DistributedSampler
would ask of a split on disk). All in one run: compare the ratios, not seconds across runs.

    python tools/bench_shards.py [--images 20000] [--size 64] [--reads 4000]
"""
from __future__ import annotations

import argparse
import io
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ssl_lib.data.shards import BlockShuffleSampler, ParquetDataset
from ssl_lib.stages.prep import prep


def _make_folder(root: Path, images: int, size: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(images):
        folder = root / f"class{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
        (folder / f"{i:06d}.jpg").write_bytes(buf.getvalue())


def _reads_per_second(ds: ParquetDataset, order: list[int]) -> float:
    start = time.perf_counter()
    total = sum(len(ds.get_bytes(i)) for i in order)
    assert total > 0
    return len(order) / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=20000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--reads", type=int, default=4000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
        tmp = Path(tmp)
        os.environ["SSL_DATA_CACHE"] = str(tmp / "cache")
        _make_folder(tmp / "raw", args.images, args.size)
        prep(str(tmp / "raw"), str(tmp / "ds"), test_fraction=0.0)
        size = sum(f.stat().st_size for f in (tmp / "ds" / "shards").iterdir())
        print(f"{args.images} JPEGs of {args.size} px, {size / 2**20:.1f} MiB of shards")

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        disk = ParquetDataset(str(tmp / "ds"), "train", in_memory=False)
        block_order = list(BlockShuffleSampler(disk.blocks, seed=0))[:args.reads]
        random_order = np.random.default_rng(0).permutation(len(disk))[:args.reads].tolist()
        rates = {"disk, block-shuffled order": _reads_per_second(disk, block_order),
                 "disk, random order": _reads_per_second(disk, random_order)}
        disk_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        memory = ParquetDataset(str(tmp / "ds"), "train", in_memory=True)
        rates["in memory, random order"] = _reads_per_second(memory, random_order)
        memory_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        base = rates["in memory, random order"]
        for name, rate in rates.items():
            print(f"{name:28s} {rate:10.0f} reads/s   ratio to in memory {rate / base:.3f}")
        print(f"peak RSS growth: reading from disk {(disk_rss - rss) / 1024:.1f} MiB, "
              f"then in memory {(memory_rss - disk_rss) / 1024:.1f} MiB more")


if __name__ == "__main__":
    main()
