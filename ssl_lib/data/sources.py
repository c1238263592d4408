"""Data sources: the raw inputs the prep stage ingests, and the manifest of the dataset it writes
(read back by `shards.ParquetShards`).

A raw source (FashionMNIST, ImageNet) has `classes`, `__len__` (candidate inputs) and iterates
`(name, payload, label, split)`: `payload` is the file's bytes or, for IDX data, a uint8 array;
`split` is "train" or "test". Inputs it cannot read are listed in `skipped` as
`{"input": relative path, "reason": ...}`; that list is final once iteration has finished.
`iter_from(start)` gives the same inputs from position `start` on, each with a `load` callable in
place of the payload, so that an interrupted prep resumes without reading what came before.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import tempfile
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

import numpy as np

from .. import storage
from ..errors import DataError
from ..registry import DATASOURCES

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DATASET_FORMAT = "ssl_lib.dataset/1"
MANIFEST = "manifest.json"

Sample = tuple[str, "bytes | np.ndarray", int, str]
Entry = tuple[int, str, Callable[[], "bytes | np.ndarray"], int, str]  # position, name, load, label, split


def read_failure(name: str, err: OSError) -> dict:
    return {"input": name, "reason": f"cannot read file: {err.strerror or err}"}


class RawSource:
    """The iteration every raw source shares; subclasses define `iter_from`."""

    classes: list[str]
    skipped: list[dict]

    def iter_from(self, start: int = 0) -> Iterator[Entry]:
        raise NotImplementedError

    def _note_skip(self, entry: dict) -> None:
        self.skipped.append(entry)

    def __iter__(self) -> Iterator[Sample]:
        for _, name, load, label, split in self.iter_from(0):
            try:
                payload = load()
            except OSError as err:
                self._note_skip(read_failure(name, err))
                continue
            yield name, payload, label, split


def balanced_first(labels: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the first `limit` samples taken round-robin over classes, in original order.

    Ranking each sample within its class and taking the lowest ranks gives every class the same
    share (as far as it has samples) and is stable: the same inputs always give the same subset.
    """
    labels = np.asarray(labels)
    if limit <= 0 or limit >= len(labels):
        return np.arange(len(labels))
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels)) - starts
    chosen = np.lexsort((np.arange(len(labels)), rank))[:limit]
    return np.sort(chosen)


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file (plain or .gz): magic 0x0000, dtype code, ndim, big-endian int32 dims."""
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(f"{path}: not a readable gzip file ({err})") from err
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in dtypes:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4).astype(np.int64)
    dtype = np.dtype(dtypes[raw[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise DataError(f"{path}: IDX header says {tuple(dims)} ({expected} bytes) "
                        f"but the file holds {len(raw) - offset} bytes of data")
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(tuple(dims))


def _idx_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def has_idx_files(folder: Path) -> bool:
    return _idx_file(folder, "train-images-idx3-ubyte") is not None


@DATASOURCES.register_module()
class FashionMNIST(RawSource):
    """Fashion-MNIST from its IDX files (as Debian's dataset-fashion-mnist installs them).

    `train_limit` / `test_limit` (0 = all) keep a class-balanced, stable subset of each split.
    """

    SPLITS = {"train": "train", "test": "t10k"}

    def __init__(self, data_prefix: str = FASHION_MNIST_DIR, train_limit: int = 0, test_limit: int = 0):
        folder = Path(data_prefix)
        self.classes = list(FASHION_MNIST_CLASSES)
        self.skipped: list[dict] = []
        self._splits = []
        limits = {"train": train_limit, "test": test_limit}
        for split, stem in self.SPLITS.items():
            images_file = _idx_file(folder, f"{stem}-images-idx3-ubyte")
            labels_file = _idx_file(folder, f"{stem}-labels-idx1-ubyte")
            if images_file is None or labels_file is None:
                raise DataError(f"Fashion-MNIST folder {folder} lacks {stem}-images-idx3-ubyte[.gz] "
                                f"or {stem}-labels-idx1-ubyte[.gz]")
            images, labels = read_idx(images_file), read_idx(labels_file)
            if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
                raise DataError(f"{images_file} ({images.shape}) and {labels_file} ({labels.shape}) "
                                f"do not pair up as N x H x W images and N labels")
            if len(labels) and int(labels.max()) >= len(self.classes):
                raise DataError(f"{labels_file}: label {int(labels.max())} is not a Fashion-MNIST class (0-9)")
            keep = balanced_first(labels, limits[split])
            self._splits.append((split, images, labels.astype(np.int64), keep))

    def __len__(self) -> int:
        return sum(len(keep) for *_, keep in self._splits)

    def iter_from(self, start: int = 0) -> Iterator[Entry]:
        offset = 0
        for split, images, labels, keep in self._splits:
            for j in range(max(0, start - offset), len(keep)):
                i = int(keep[j])
                yield offset + j, f"{split}/{i:05d}", partial(images.__getitem__, i), int(labels[i]), split
            offset += len(keep)


def holdout_split(relpath: str, test_fraction: float) -> str:
    """'test' for a stable pseudo-random `test_fraction` of paths, else 'train' (same on every rerun)."""
    digest = hashlib.sha256(relpath.encode("utf-8")).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2.0 ** 64 < test_fraction else "train"


@DATASOURCES.register_module()
class ImageNet(RawSource):
    """Images in class folders (`data_prefix/<class>/**/<image>`), or listed in `ann_file`.

    Seed semantics: without `ann_file` the classes are the sorted subfolders of `data_prefix`;
    with it, each line is `<path relative to data_prefix> <label>` and the classes are the label
    ids, named after their folder where all images of a label sit in folders of one name, theirs alone.
    `classes` fixes the class list (folder mode: which folders, in which order).
    `split` puts every image in that split; None holds out a stable `test_fraction` by path hash.
    """

    def __init__(self, data_prefix: str, ann_file: str | None = None, classes: list[str] | None = None,
                 split: str | None = None, test_fraction: float = 0.2, train_limit: int = 0,
                 test_limit: int = 0):
        self.data_prefix = Path(data_prefix)
        if not self.data_prefix.is_dir():
            raise DataError(f"dataset path not found: {data_prefix}")
        self.skipped: list[dict] = []
        if ann_file is None:
            items, self.classes = self._scan_folders(classes)
        else:
            items, self.classes = self._read_list(Path(ann_file), classes)
        items = [(rel, label, split or holdout_split(rel, test_fraction)) for rel, label in sorted(items)]
        limits = {"train": train_limit, "test": test_limit}
        self._items = []
        for name in ("train", "test"):
            part = [item for item in items if item[2] == name]
            keep = balanced_first(np.array([label for _, label, _ in part], dtype=np.int64), limits[name])
            self._items.extend(part[i] for i in keep)
        self._items.sort()

    def _scan_folders(self, classes: list[str] | None) -> tuple[list[tuple[str, int]], list[str]]:
        if classes is None:
            classes = sorted(d.name for d in self.data_prefix.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not classes:
            raise DataError(f"no class folders in {self.data_prefix}: expected {self.data_prefix}/<class>/<image>")
        items = []
        for label, name in enumerate(classes):
            folder = self.data_prefix / name
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*")):
                rel = path.relative_to(self.data_prefix).as_posix()
                if not path.is_file() or any(part.startswith(".") for part in PurePosixPath(rel).parts):
                    continue
                if path.suffix.lower() not in IMG_EXTENSIONS:
                    self.skipped.append({"input": rel, "reason": f"not an image file (extension {path.suffix!r})"})
                    continue
                items.append((rel, label))
        return items, list(classes)

    def _read_list(self, ann_file: Path, classes: list[str] | None) -> tuple[list[tuple[str, int]], list[str]]:
        if not ann_file.is_file():
            raise DataError(f"dataset path not found: {ann_file}")
        entries = []
        for lineno, line in enumerate(ann_file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            rel, _, label = line.strip().rpartition(" ")
            if not rel or not label.lstrip("-").isdigit() or int(label) < 0:
                self.skipped.append({"input": f"{ann_file.name}:{lineno}",
                                     "reason": f"expected '<path> <label>', got {line.strip()!r}"})
                continue
            entries.append((PurePosixPath(rel.strip()).as_posix(), int(label)))
        if classes is None:
            classes = _names_from_folders(entries)
        items = []
        for rel, label in entries:
            if label >= len(classes):
                self.skipped.append({"input": rel, "reason": f"label {label} is outside the {len(classes)} classes"})
            elif not (self.data_prefix / rel).is_file():
                self.skipped.append({"input": rel, "reason": f"file not found under {self.data_prefix}"})
            else:
                items.append((rel, label))
        return items, list(classes)

    def __len__(self) -> int:
        return len(self._items)

    def iter_from(self, start: int = 0) -> Iterator[Entry]:
        for pos in range(start, len(self._items)):
            rel, label, split = self._items[pos]
            yield pos, rel, (self.data_prefix / rel).read_bytes, label, split


def _names_from_folders(entries: list[tuple[str, int]]) -> list[str]:
    """Class names for label ids 0..max: the folder holding a label's images when it is theirs alone."""
    if not entries:
        return []
    folders: dict[int, set[str]] = {}
    for rel, label in entries:
        folders.setdefault(label, set()).add(PurePosixPath(rel).parent.name)
    owners: dict[str, int] = {}
    for folder_set in folders.values():
        for folder in folder_set:
            owners[folder] = owners.get(folder, 0) + 1
    names = []
    for label in range(max(label for _, label in entries) + 1):
        folder_set = folders.get(label, set())
        folder = next(iter(folder_set)) if len(folder_set) == 1 else ""
        names.append(folder if folder and owners[folder] == 1 else str(label))
    return names


class SplitSources(RawSource):
    """Several sources with one class list, e.g. `train/` and `val/`; names get `prefixes`."""

    def __init__(self, sources: list, prefixes: list[str], classes: list[str]):
        self.sources, self.prefixes, self.classes = sources, prefixes, classes
        self._read_failures: list[dict] = []

    @property
    def skipped(self) -> list[dict]:
        return [dict(entry, input=prefix + entry["input"])
                for source, prefix in zip(self.sources, self.prefixes) for entry in source.skipped
                ] + self._read_failures

    def _note_skip(self, entry: dict) -> None:
        self._read_failures.append(entry)

    def __len__(self) -> int:
        return sum(len(source) for source in self.sources)

    def iter_from(self, start: int = 0) -> Iterator[Entry]:
        offset = 0
        for source, prefix in zip(self.sources, self.prefixes):
            if start < offset + len(source):
                for pos, name, load, label, split in source.iter_from(max(0, start - offset)):
                    yield offset + pos, prefix + name, load, label, split
            offset += len(source)


def _merge_names(*class_lists: list[str]) -> list[str]:
    """One class list from several: a real name beats the str(label) fallback at each index."""
    merged = []
    for i in range(max(len(c) for c in class_lists)):
        names = [c[i] for c in class_lists if i < len(c) and c[i] != str(i)]
        merged.append(names[0] if names else str(i))
    return merged


def _sibling(folder: Path, *names: str) -> Path | None:
    return next((folder / n for n in names if (folder / n).exists()), None)


def _download_prefix(uri: str, local: Path) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        names = storage.listdir(uri)
        for name in names:
            storage.download(storage.join(uri, name), local / name)
    except (BotoCoreError, ClientError) as err:
        raise DataError(f"cannot read dataset {uri}: {err}") from err
    if not names:
        raise DataError(f"dataset path not found: {uri}")


def source_from_uri(uri: str, *, train_limit: int = 0, test_limit: int = 0, test_fraction: float = 0.2,
                    data_prefix: str | None = None, workdir: str | None = None):
    """The raw source that `uri` names, with train/test splits assigned.

    - "fashion-mnist", or a folder holding IDX files: FashionMNIST;
    - a folder with `meta/train.txt` (the seed's ImageNet layout): list files under `train/`, `val/`;
    - a folder with `train/` and `val/` (or `test/`) class folders: those splits ('val' becomes 'test');
    - any other folder: class folders, with a stable `test_fraction` held out;
    - a `.txt` list file (data_prefix: its folder unless given); a sibling of `train.txt` named
      `val.txt` / `test.txt` gives the test split;
    - `s3://...`: the prefix (for a list file: its folder) is downloaded into `workdir` (a
      temporary folder, kept as long as the returned source lives, if not given) first.
    """
    uri = str(uri)
    limits = dict(train_limit=train_limit, test_limit=test_limit)
    if uri == "fashion-mnist":
        uri = FASHION_MNIST_DIR
    if storage.is_s3(uri):
        keep_alive = None
        if workdir is None:
            keep_alive = tempfile.TemporaryDirectory(prefix="ssl-source-")
            workdir = keep_alive.name
        is_list = uri.endswith(".txt")
        prefix = uri.rstrip("/").rsplit("/", 1)[0] if is_list else uri.rstrip("/")
        _download_prefix(prefix, Path(workdir))
        local = Path(workdir) / uri.rsplit("/", 1)[1] if is_list else Path(workdir)
        if is_list and not local.is_file():
            raise DataError(f"dataset path not found: {uri}")
        source = source_from_uri(str(local), test_fraction=test_fraction, data_prefix=data_prefix, **limits)
        source.workdir = keep_alive
        return source

    path = Path(uri)
    if not path.exists():
        raise DataError(f"dataset path not found: {uri}")
    if path.is_file():
        if path.suffix != ".txt":
            raise DataError(f"unsupported dataset file {uri}: expected a folder or a .txt list file")
        prefix = data_prefix or str(path.parent)
        other = _sibling(path.parent, "val.txt", "test.txt") if path.name == "train.txt" else None
        if other is None:
            return ImageNet(prefix, ann_file=str(path), test_fraction=test_fraction, **limits)
        train = ImageNet(prefix, ann_file=str(path), split="train", train_limit=train_limit)
        test = ImageNet(prefix, ann_file=str(other), split="test", test_limit=test_limit)
        return SplitSources([train, test], ["", ""], _merge_names(train.classes, test.classes))
    if has_idx_files(path):
        return FashionMNIST(str(path), **limits)

    meta_train = path / "meta" / "train.txt"
    if meta_train.is_file() and (path / "train").is_dir():
        sources, prefixes = [ImageNet(str(path / "train"), ann_file=str(meta_train), split="train",
                                      train_limit=train_limit)], ["train/"]
        for name in ("val", "test"):
            if (path / "meta" / f"{name}.txt").is_file() and (path / name).is_dir():
                sources.append(ImageNet(str(path / name), ann_file=str(path / "meta" / f"{name}.txt"),
                                        split="test", test_limit=test_limit))
                prefixes.append(f"{name}/")
                break
        return SplitSources(sources, prefixes, _merge_names(*(s.classes for s in sources)))

    test_dir = _sibling(path, "val", "test")
    if (path / "train").is_dir() and test_dir is not None and test_dir.is_dir():
        dirs = [path / "train", test_dir]
        classes = sorted({d.name for folder in dirs for d in folder.iterdir()
                          if d.is_dir() and not d.name.startswith(".")})
        train = ImageNet(str(dirs[0]), classes=classes, split="train", train_limit=train_limit)
        test = ImageNet(str(dirs[1]), classes=classes, split="test", test_limit=test_limit)
        return SplitSources([train, test], ["train/", f"{test_dir.name}/"], classes)
    return ImageNet(str(path), test_fraction=test_fraction, **limits)


def load_manifest(root: str) -> dict:
    """The manifest of a published dataset, or a DataError saying what is missing."""
    uri = storage.join(root, MANIFEST)
    if not storage.is_complete(root) or not storage.exists(uri):
        raise DataError(f"no complete dataset at {root}: {uri} is missing or was not fully published "
                        f"(run the prep stage first)")
    try:
        manifest = json.loads(storage.read_text(uri))
    except (ValueError, UnicodeDecodeError) as err:
        raise DataError(f"{uri} is not valid JSON: {err}") from err
    if manifest.get("format") != DATASET_FORMAT:
        raise DataError(f"{uri} has format {manifest.get('format')!r}, expected {DATASET_FORMAT!r}")
    return manifest
