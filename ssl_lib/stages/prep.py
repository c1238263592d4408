"""Stage `prep`: turn a raw dataset (Fashion-MNIST IDX files, an ImageNet-style folder or list
file, local or s3://) into the dataset artifact: Parquet shards of encoded images with label,
split and name, plus manifest.json (classes, counts, shard sha256s, skipped inputs).

Every image is decoded once to check it; unreadable ones are skipped and listed in the manifest.
The artifact is published atomically; a rerun with the same source and parameters on a complete
output returns its metrics without redoing the work.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .. import storage
from ..data.sources import DATASET_FORMAT, FASHION_MNIST_DIR, MANIFEST, load_manifest, source_from_uri
from ..errors import ConfigError, DataError
from ._cli import run_cli

SPLITS = ("train", "test")
PROGRESS_MIN_INPUTS = 300


def _check_params(train_limit: int, test_limit: int, test_fraction: float, shard_size: int,
                  image_format: str) -> None:
    if train_limit < 0 or test_limit < 0:
        raise ConfigError(f"prep: limits must be >= 0 (0 = all), got train_limit={train_limit}, test_limit={test_limit}")
    if not 0.0 <= test_fraction < 1.0:
        raise ConfigError(f"prep: test_fraction must be in [0, 1), got {test_fraction}")
    if shard_size < 1:
        raise ConfigError(f"prep: shard_size must be >= 1, got {shard_size}")
    Image.init()
    if image_format.upper() not in Image.SAVE:
        raise ConfigError(f"prep: image_format {image_format!r} cannot be written by Pillow; use PNG or JPEG")


def _source_fingerprint(source: str) -> list:
    """Names, sizes and modification times of the files a source reads: cheap to list, and they
    change whenever the data does."""
    import pyarrow.fs as pafs

    uri = FASHION_MNIST_DIR if source == "fashion-mnist" else source
    if uri.endswith(".txt"):  # a list file reads from its folder
        uri = uri.rstrip("/").rsplit("/", 1)[0] if storage.is_s3(uri) else str(Path(uri).parent)
    fs, path = storage.arrow_filesystem(uri)
    try:
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    except OSError as err:
        raise DataError(f"cannot list dataset {source}: {err}") from err
    return sorted([info.path[len(path):], info.size, info.mtime_ns]
                  for info in infos if info.type == pafs.FileType.File)


def _encode(payload, image_format: str) -> bytes:
    """Original bytes of a file that decodes; an array encoded in `image_format`. Raises on a bad image."""
    if isinstance(payload, np.ndarray):
        buf = io.BytesIO()
        Image.fromarray(payload).save(buf, format=image_format)
        return buf.getvalue()
    with Image.open(io.BytesIO(payload)) as img:
        img.load()
    return payload


class _ShardWriter:
    """Buffers rows per split and writes `shards/{split}-{i:05d}.parquet` every `shard_size` rows."""

    def __init__(self, root: Path, shard_size: int):
        self.root, self.shard_size = root, shard_size
        self.rows = {split: [] for split in SPLITS}
        self.shards: list[dict] = []
        self.counts = {split: 0 for split in SPLITS}

    def add(self, split: str, image: bytes, label: int, name: str) -> None:
        self.rows[split].append((image, label, name))
        if len(self.rows[split]) >= self.shard_size:
            self.flush(split)

    def flush(self, split: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = self.rows[split]
        if not rows:
            return
        table = pa.table({
            "image": pa.array([r[0] for r in rows], pa.large_binary()),  # no 2 GiB cap per shard
            "label": pa.array([r[1] for r in rows], pa.int64()),
            "split": pa.array([split] * len(rows), pa.string()),
            "name": pa.array([r[2] for r in rows], pa.string()),
        })
        rel = f"shards/{split}-{sum(s['split'] == split for s in self.shards):05d}.parquet"
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        # Encoded images do not compress further; the small columns do.
        pq.write_table(table, path, compression={"image": "NONE", "label": "ZSTD", "split": "ZSTD", "name": "ZSTD"})
        self.shards.append({"path": rel, "split": split, "rows": len(rows),
                            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
        self.counts[split] += len(rows)
        self.rows[split] = []


def _metrics(manifest: dict, output: str) -> dict:
    return {"num_train": manifest["counts"]["train"], "num_test": manifest["counts"]["test"],
            "num_classes": manifest["num_classes"], "num_skipped": len(manifest["skipped"]),
            "manifest": storage.join(output, MANIFEST)}


def _existing(output: str, fingerprint: str) -> dict | None:
    """The manifest already at `output` when it was built from the same source and parameters."""
    try:
        manifest = load_manifest(output)
    except Exception:  # absent, incomplete or unreadable: build it again
        return None
    return manifest if manifest.get("fingerprint") == fingerprint else None


def prep(source: str, output: str, train_limit: int = 0, test_limit: int = 0, test_fraction: float = 0.2,
         shard_size: int = 5000, image_format: str = "PNG") -> dict:
    """Build the dataset artifact at `output` from `source`; returns counts and the manifest URI."""
    from tqdm import tqdm

    source, output = str(source), str(output)
    _check_params(train_limit, test_limit, test_fraction, shard_size, image_format)
    image_format = image_format.upper()
    params = dict(train_limit=train_limit, test_limit=test_limit, test_fraction=test_fraction,
                  shard_size=shard_size, image_format=image_format)
    if source != "fashion-mnist" and not storage.is_s3(source) and not Path(source).exists():
        raise DataError(f"dataset path not found: {source}")
    fingerprint = hashlib.sha256(json.dumps(
        {"format": DATASET_FORMAT, "source": source, "params": params, "files": _source_fingerprint(source)},
        sort_keys=True).encode()).hexdigest()
    existing = _existing(output, fingerprint)
    if existing is not None:
        print(f"prep: {output} already holds this dataset; nothing to do", file=sys.stderr)
        return _metrics(existing, output)

    src = source_from_uri(source, train_limit=train_limit, test_limit=test_limit, test_fraction=test_fraction)
    skipped = []
    with storage.publish_dir(output) as staging:
        writer = _ShardWriter(Path(staging), shard_size)
        for name, payload, label, split in tqdm(src, total=len(src), desc="prep", unit="img", file=sys.stderr,
                                                disable=len(src) <= PROGRESS_MIN_INPUTS):
            try:
                image = _encode(payload, image_format)
            except UnidentifiedImageError:  # its message holds a memory address: not reproducible
                skipped.append({"input": name, "reason": "cannot decode image: not an image format Pillow knows"})
                continue
            except Exception as err:  # Pillow raises many types for bad data; each is a skip, not a failure
                skipped.append({"input": name, "reason": f"cannot decode image: {err}"})
                continue
            writer.add(split, image, label, name)
        for split in SPLITS:
            writer.flush(split)
        skipped = sorted(src.skipped + skipped, key=lambda s: s["input"])
        if not writer.shards:
            detail = "; ".join(f"{s['input']}: {s['reason']}" for s in skipped[:3])
            raise DataError(f"no valid images in {source}" + (f" ({len(skipped)} skipped, e.g. {detail})"
                                                               if skipped else ""))
        manifest = {
            "format": DATASET_FORMAT,
            "source": source,
            "classes": list(src.classes),
            "num_classes": len(src.classes),
            "counts": writer.counts,
            "shards": sorted(writer.shards, key=lambda s: (SPLITS.index(s["split"]), s["path"])),
            "skipped": skipped,
            "params": params,
            "fingerprint": fingerprint,
        }
        (Path(staging) / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return _metrics(manifest, output)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ssl_lib.stages.prep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", required=True,
                   help="'fashion-mnist', a folder (IDX files, class folders, train/ + val/), a .txt list "
                        "file of '<path> <label>' lines, or an s3:// prefix of any of these")
    p.add_argument("--output", required=True, help="folder or s3:// URI for manifest.json + shards/")
    p.add_argument("--train-limit", type=int, default=0, help="keep a class-balanced subset of N train images (0 = all)")
    p.add_argument("--test-limit", type=int, default=0, help="the same for the test split")
    p.add_argument("--test-fraction", type=float, default=0.2,
                   help="share held out as test when the source has no split of its own (default 0.2)")
    p.add_argument("--shard-size", type=int, default=5000, help="images per Parquet shard (default 5000)")
    p.add_argument("--image-format", default="PNG", help="encoding for array data such as IDX (default PNG)")
    return p


if __name__ == "__main__":
    sys.exit(run_cli(build_parser(), prep))
