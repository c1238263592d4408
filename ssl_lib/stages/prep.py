"""Stage `prep`: turn a raw dataset (Fashion-MNIST IDX files, an ImageNet-style folder or list
file, a PASCAL VOC2007 folder, local or s3://) into the dataset artifact: Parquet shards of encoded
images with label, split and name, plus manifest.json (classes, counts, shard sha256s, skipped inputs).
A VOC dataset is multi-label: its shards hold `labels`, an int8 vector of 1 / -1 / 0 per class, in
place of `label`, and its manifest says `"multi_label": true`. The built-in `fashion-mnist-mosaic`
is generated (ssl_lib.data.mosaic) into a temporary VOC2007 folder and read through the VOC reader.

Every image is decoded once to check it; unreadable ones are skipped and listed in the manifest.
Shards go to the output as they fill, with a journal of what is written; the manifest and then
`_SUCCESS` come last, and readers see nothing before `_SUCCESS`. A rerun with the same source and
parameters resumes an interrupted build after its last written shard, and on a complete output
returns its metrics without redoing the work. A build from another source or other parameters
retracts the old dataset (`_SUCCESS` first) only when it writes its first shard.

`task="detseg"` builds the detection / segmentation dataset artifact instead (ssl_lib.data.detseg):
the source's VOC, COCO and Cityscapes files, checked and copied in the engines' layouts.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .. import outlock, storage
from ..data import detseg, mosaic
from ..data.sources import (DATASET_FORMAT, FASHION_MNIST_DIR, MANIFEST, load_manifest, read_failure,
                            source_from_uri)
from ..errors import ConfigError, DataError
from ._cli import run_cli

SPLITS = ("train", "test")
PROGRESS_MIN_INPUTS = 300
ROW_GROUP_ROWS = 256  # the unit a large split is read in (shards.ParquetShards)
JOURNAL = "_prep_journal.json"  # shards written so far by an unfinished build
MOSAIC = "fashion-mnist-mosaic"
BUILTIN = ("fashion-mnist", MOSAIC)  # sources named, not found at a path; both read the installed Fashion-MNIST
TASKS = ("classification", "detseg")


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

    uri = FASHION_MNIST_DIR if source in BUILTIN else source
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
    """Buffers rows per split; every `shard_size` rows of a split become `shards/{split}-{i:05d}.parquet`,
    written straight to the output and recorded in a journal there, so that an interrupted run
    resumes after the last shard it wrote. The output stays incomplete (no `_SUCCESS`) meanwhile.

    `done_before[split]` is the source position below which every input of that split is in a
    written shard or skipped: a rerun starts at the smallest of them and passes over the rest.
    """

    def __init__(self, output: str, shard_size: int, fingerprint: str, journal: dict | None = None,
                 multi_label: bool = False):
        self.output, self.shard_size, self.fingerprint = output, shard_size, fingerprint
        self.multi_label = multi_label
        journal = journal or {}
        self.shards: list[dict] = journal.get("shards", [])
        self.counts = journal.get("counts", {split: 0 for split in SPLITS})
        self.done_before = journal.get("done_before", {split: 0 for split in SPLITS})
        self.skipped = [s for s in journal.get("skipped", []) if s["position"] < self.done_before[s["split"]]]
        self.rows: dict[str, list] = {split: [] for split in SPLITS}
        self._started = bool(journal)

    @property
    def resume_position(self) -> int:
        return min(self.done_before.values())

    def is_done(self, position: int, split: str) -> bool:
        return position < self.done_before[split]

    def skip(self, position: int, split: str, name: str, reason: str) -> None:
        self.skipped.append({"input": name, "reason": reason, "position": position, "split": split})

    def add(self, position: int, split: str, image: bytes, label: "int | np.ndarray", name: str) -> None:
        self.rows[split].append((image, label, name))
        if len(self.rows[split]) >= self.shard_size:
            self.flush(split, position + 1)

    def _start(self) -> None:
        """Before the first shard of a fresh build: retract what an earlier build published here."""
        storage.remove(storage.join(self.output, storage.SUCCESS))
        for name in storage.listdir(self.output):
            if name in (MANIFEST, JOURNAL) or (name.startswith("shards/") and name.endswith(".parquet")):
                storage.remove(storage.join(self.output, name))
        self._started = True

    def flush(self, split: str, done_before: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = self.rows[split]
        if rows:
            if not self._started:
                self._start()
            if self.multi_label:
                vectors = np.stack([r[1] for r in rows]).astype(np.int8)
                offsets = np.arange(len(rows) + 1, dtype=np.int32) * vectors.shape[1]
                label = {"labels": pa.ListArray.from_arrays(pa.array(offsets), pa.array(vectors.ravel()))}
            else:
                label = {"label": pa.array([r[1] for r in rows], pa.int64())}
            table = pa.table({
                "image": pa.array([r[0] for r in rows], pa.large_binary()),  # no 2 GiB cap per shard
                **label,
                "split": pa.array([split] * len(rows), pa.string()),
                "name": pa.array([r[2] for r in rows], pa.string()),
            })
            rel = f"shards/{split}-{sum(s['split'] == split for s in self.shards):05d}.parquet"
            with tempfile.TemporaryDirectory(prefix="ssl-prep-") as tmp:
                path = Path(tmp) / "shard.parquet"
                # Encoded images do not compress further; the small columns do.
                pq.write_table(table, path, row_group_size=ROW_GROUP_ROWS,
                               compression={"image": "NONE", **{column: "ZSTD" for column in label},
                                            "split": "ZSTD", "name": "ZSTD"})
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                storage.upload(path, storage.join(self.output, rel))
            self.shards.append({"path": rel, "split": split, "rows": len(rows), "sha256": digest})
            self.counts[split] += len(rows)
            self.rows[split] = []
        for other in SPLITS:  # a split with nothing buffered has handled every input of its own so far
            if other == split or not self.rows[other]:
                self.done_before[other] = max(self.done_before[other], done_before)
        if rows:
            self._write_journal()

    def _write_journal(self) -> None:
        storage.write_text(storage.join(self.output, JOURNAL), json.dumps({
            "fingerprint": self.fingerprint, "shards": self.shards, "counts": self.counts,
            "done_before": self.done_before, "skipped": self.skipped}))

    def publish(self, manifest: dict) -> None:
        """The manifest, then `_SUCCESS`: from that moment readers see the dataset."""
        if not self._started:
            self._start()
        storage.write_text(storage.join(self.output, MANIFEST), json.dumps(manifest, indent=2) + "\n")
        storage.write_text(storage.join(self.output, storage.SUCCESS), "")
        storage.remove(storage.join(self.output, JOURNAL))


def _journal(output: str, fingerprint: str) -> dict | None:
    """What an interrupted build of the same source and parameters left at `output`."""
    try:
        journal = json.loads(storage.read_text(storage.join(output, JOURNAL)))
    except Exception:  # absent or unreadable: start afresh
        return None
    return journal if journal.get("fingerprint") == fingerprint else None


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


def _ingest(src, writer: _ShardWriter, start: int, image_format: str) -> None:
    """Every input from position `start` on: checked, encoded and written, or skipped with its reason."""
    from tqdm import tqdm

    bar = tqdm(total=len(src), initial=start, desc="prep", unit="img", file=sys.stderr,
               disable=len(src) <= PROGRESS_MIN_INPUTS)
    for position, name, load, label, split in src.iter_from(start):
        bar.update(1)
        if writer.is_done(position, split):
            continue
        try:
            payload = load()
        except OSError as err:
            writer.skip(position, split, name, read_failure(name, err)["reason"])
            continue
        try:
            image = _encode(payload, image_format)
        except UnidentifiedImageError:  # its message holds a memory address: not reproducible
            writer.skip(position, split, name, "cannot decode image: not an image format Pillow knows")
            continue
        except Exception as err:  # Pillow raises many types for bad data; each is a skip, not a failure
            writer.skip(position, split, name, f"cannot decode image: {err}")
            continue
        writer.add(position, split, image, label, name)
    bar.close()
    for split in SPLITS:
        writer.flush(split, len(src))


@contextlib.contextmanager
def _open_source(source: str, train_limit: int, test_limit: int, test_fraction: float, mosaic_size: int,
                 mosaic_seed: int):
    """The raw source; the mosaic is generated into a temporary folder that lives as long as it is read."""
    if source != MOSAIC:
        yield source_from_uri(source, train_limit=train_limit, test_limit=test_limit, test_fraction=test_fraction)
        return
    num_train, num_test = train_limit or mosaic.DEFAULT_TRAIN, test_limit or mosaic.DEFAULT_TEST
    print(f"prep: generating the Fashion-MNIST mosaic ({num_train} trainval + {num_test} test images, "
          f"{mosaic_size} px, seed {mosaic_seed})", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="ssl-mosaic-") as folder:
        mosaic.generate(folder, num_train, num_test, mosaic_size, mosaic_seed)
        yield source_from_uri(folder)


@outlock.writes("output")
def prep(source: str, output: str, train_limit: int = 0, test_limit: int = 0, test_fraction: float = 0.2,
         shard_size: int = 5000, image_format: str = "PNG", mosaic_size: int = 96, mosaic_seed: int = 0,
         task: str = "classification") -> dict:
    """Build the dataset artifact at `output` from `source`; returns counts and the manifest URI.
    For `fashion-mnist-mosaic` the limits are the numbers of images to generate (0: VOC2007's
    5011 trainval / 4952 test), of `mosaic_size` pixels from `mosaic_seed`. `task="detseg"`: the
    det/seg artifact (shards, test_fraction and image_format do not apply)."""
    source, output = str(source), str(output)
    if task not in TASKS:
        raise ConfigError(f"prep: task must be one of {', '.join(TASKS)}, got {task!r}")
    if task == "detseg":
        if source != MOSAIC and not storage.is_s3(source) and not Path(source).is_dir():
            raise DataError(f"dataset path not found: {source} (detseg needs a folder, or {MOSAIC})")
        return detseg.build(source, output, train_limit, test_limit, mosaic_size, mosaic_seed,
                            source_files=_source_fingerprint(source))
    _check_params(train_limit, test_limit, test_fraction, shard_size, image_format)
    image_format = image_format.upper()
    params = dict(train_limit=train_limit, test_limit=test_limit, test_fraction=test_fraction,
                  shard_size=shard_size, image_format=image_format)
    if source == MOSAIC:
        mosaic.check_params(train_limit or mosaic.DEFAULT_TRAIN, test_limit or mosaic.DEFAULT_TEST, mosaic_size)
        params.update(mosaic_size=mosaic_size, mosaic_seed=mosaic_seed, mosaic_version=mosaic.GENERATOR_VERSION)
    if source not in BUILTIN and not storage.is_s3(source) and not Path(source).exists():
        raise DataError(f"dataset path not found: {source}")
    fingerprint = hashlib.sha256(json.dumps(
        {"format": DATASET_FORMAT, "source": source, "params": params, "files": _source_fingerprint(source)},
        sort_keys=True).encode()).hexdigest()
    existing = _existing(output, fingerprint)
    if existing is not None:
        print(f"prep: {output} already holds this dataset; nothing to do", file=sys.stderr)
        return _metrics(existing, output)

    with _open_source(source, train_limit, test_limit, test_fraction, mosaic_size, mosaic_seed) as src:
        journal = None if storage.is_complete(output) else _journal(output, fingerprint)
        writer = _ShardWriter(output, shard_size, fingerprint, journal, multi_label=src.multi_label)
        start = writer.resume_position
        if journal is not None:
            print(f"prep: resuming {output} at input {start} of {len(src)} ({len(writer.shards)} shards already "
                  f"written)", file=sys.stderr)
        _ingest(src, writer, start, image_format)
    skipped = sorted(src.skipped + [{"input": s["input"], "reason": s["reason"]} for s in writer.skipped],
                     key=lambda s: s["input"])
    if not writer.shards:
        detail = "; ".join(f"{s['input']}: {s['reason']}" for s in skipped[:3])
        raise DataError(f"no valid images in {source}" + (f" ({len(skipped)} skipped, e.g. {detail})"
                                                           if skipped else ""))
    if src.multi_label:
        src.check_positives_after(skipped)
    manifest = {
        "format": DATASET_FORMAT,
        "source": source,
        "classes": list(src.classes),
        "num_classes": len(src.classes),
        "multi_label": src.multi_label,
        "counts": writer.counts,
        "shards": sorted(writer.shards, key=lambda s: (SPLITS.index(s["split"]), s["path"])),
        "skipped": skipped,
        "params": params,
        "fingerprint": fingerprint,
    }
    writer.publish(manifest)
    return _metrics(manifest, output)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ssl_lib.stages.prep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", required=True,
                   help="'fashion-mnist', 'fashion-mnist-mosaic' (multi-label, VOC2007 layout), a folder (IDX "
                        "files, a VOC2007 layout, class folders, train/ + val/), a .txt list file of "
                        "'<path> <label>' lines, or an s3:// prefix of any of these")
    p.add_argument("--output", required=True, help="folder or s3:// URI for manifest.json + shards/")
    p.add_argument("--train-limit", type=int, default=0,
                   help="keep a class-balanced subset of N train images (0 = all); for fashion-mnist-mosaic, "
                        f"the number of trainval images to generate (0 = {mosaic.DEFAULT_TRAIN})")
    p.add_argument("--test-limit", type=int, default=0,
                   help=f"the same for the test split (fashion-mnist-mosaic: 0 = {mosaic.DEFAULT_TEST})")
    p.add_argument("--test-fraction", type=float, default=0.2,
                   help="share held out as test when the source has no split of its own (default 0.2)")
    p.add_argument("--shard-size", type=int, default=5000, help="images per Parquet shard (default 5000)")
    p.add_argument("--image-format", default="PNG", help="encoding for array data such as IDX (default PNG)")
    p.add_argument("--mosaic-size", type=int, default=96, help="fashion-mnist-mosaic: canvas side in pixels")
    p.add_argument("--mosaic-seed", type=int, default=0, help="fashion-mnist-mosaic: generator seed")
    p.add_argument("--task", choices=TASKS, default="classification",
                   help="classification: Parquet shards (default); detseg: the VOC / COCO / Cityscapes files "
                        "of the detection and segmentation benchmarks, checked, in the engines' layouts")
    return p


if __name__ == "__main__":
    sys.exit(run_cli(build_parser(), prep))
