"""Data sources: the raw inputs the prep stage ingests, and the manifest of the dataset it writes
(read back by `shards.ParquetShards`).

A raw source (FashionMNIST, ImageNet, voc.VOC) has `classes`, `__len__` (candidate inputs) and iterates
`(name, payload, label, split)`: `payload` is the file's bytes or, for IDX data, a uint8 array;
`label` a class index, or for a multi-label source (`multi_label = True`) an int8 vector of
1 / -1 / 0 per class; `split` is "train" or "test". Inputs it cannot read are listed in `skipped` as
`{"input": relative path, "reason": ...}`; that list is final once iteration has finished.
`iter_from(start)` gives the same inputs from position `start` on, each with a `load` callable in
place of the payload, so that an interrupted prep resumes without reading what came before.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
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


class FileTree:
    """The files below a local folder or an s3:// prefix, listed once. Source detection and class
    scanning ask it what is there; images are read one at a time when prep gets to them, so an
    s3:// dataset streams from the bucket instead of being copied to local disk first."""

    def __init__(self, root: str, files: list[str] | None = None, dirs: set[str] | None = None):
        self.root = root.rstrip("/") if storage.is_s3(root) else str(root)
        if files is None:
            files, dirs = self._list(self.root)
        self.files, self.dirs = files, dirs
        self._file_set = set(files)

    @staticmethod
    def _list(root: str) -> tuple[list[str], set[str]]:
        if not storage.is_s3(root):
            files, dirs = [], {""}
            for folder, subdirs, names in os.walk(root, followlinks=True):
                rel = Path(folder).relative_to(root).as_posix()
                rel = "" if rel == "." else rel
                dirs.update(f"{rel}/{d}".lstrip("/") for d in subdirs)
                files.extend(f"{rel}/{n}".lstrip("/") for n in names)
            return sorted(files), dirs
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            files = storage.listdir(root)
        except (BotoCoreError, ClientError) as err:
            raise DataError(f"cannot read dataset {root}: {err}") from err
        dirs = {""} | {str(PurePosixPath(f).parents[i]) for f in files for i in range(len(PurePosixPath(f).parts) - 1)}
        return files, dirs

    def uri(self, rel: str) -> str:
        return storage.join(self.root, rel) if rel else self.root

    def is_file(self, rel: str) -> bool:
        return rel in self._file_set

    def is_dir(self, rel: str) -> bool:
        return rel in self.dirs

    def subdirs(self, rel: str = "") -> list[str]:
        """Names of the folders directly in `rel`."""
        prefix = f"{rel}/" if rel else ""
        return sorted(d[len(prefix):] for d in self.dirs if d.startswith(prefix) and d and d != rel
                      and "/" not in d[len(prefix):])

    def files_below(self, rel: str) -> list[str]:
        prefix = f"{rel}/" if rel else ""
        return [f for f in self.files if f.startswith(prefix)]

    def sub(self, rel: str) -> "FileTree":
        prefix = f"{rel}/"
        return FileTree(self.uri(rel), [f[len(prefix):] for f in self.files_below(rel)],
                        {d[len(prefix):] for d in self.dirs if d.startswith(prefix)} | {""})

    def reader(self, rel: str) -> Callable[[], bytes]:
        """What reads one file when called; a file that cannot be read raises OSError."""
        uri = self.uri(rel)
        if not storage.is_s3(uri):
            return Path(uri).read_bytes

        def read() -> bytes:
            try:
                return storage.read_bytes(uri)
            except Exception as err:  # botocore's errors: the input is skipped, as a local read error would be
                raise OSError(f"{type(err).__name__}: {err}") from err
        return read


def _is_file(uri: str) -> bool:
    return storage.exists(uri) if storage.is_s3(uri) else Path(uri).is_file()


def _tree(data_prefix: str) -> FileTree:
    if not storage.is_s3(data_prefix) and not Path(data_prefix).is_dir():
        raise DataError(f"dataset path not found: {data_prefix}")
    tree = FileTree(data_prefix)
    if storage.is_s3(data_prefix) and not tree.files:
        raise DataError(f"dataset path not found: {data_prefix}")
    return tree


class RawSource:
    """The iteration every raw source shares; subclasses define `iter_from`."""

    classes: list[str]
    skipped: list[dict]
    multi_label = False

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


def read_idx(path: str | Path, raw: bytes | None = None) -> np.ndarray:
    """Parse an IDX file (plain or .gz): magic 0x0000, dtype code, ndim, big-endian int32 dims."""
    path = str(path)
    raw = Path(path).read_bytes() if raw is None else raw
    if path.endswith(".gz"):
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


def idx_file(tree: FileTree, stem: str) -> str | None:
    """`stem` or `stem.gz`, whichever the tree holds."""
    return next((name for name in (stem, stem + ".gz") if tree.is_file(name)), None)


def has_idx_files(tree: FileTree) -> bool:
    return idx_file(tree, "train-images-idx3-ubyte") is not None


@DATASOURCES.register_module()
class FashionMNIST(RawSource):
    """Fashion-MNIST from its IDX files (as Debian's dataset-fashion-mnist installs them).

    `train_limit` / `test_limit` (0 = all) keep a class-balanced, stable subset of each split.
    """

    SPLITS = {"train": "train", "test": "t10k"}

    def __init__(self, data_prefix: str = FASHION_MNIST_DIR, train_limit: int = 0, test_limit: int = 0,
                 tree: FileTree | None = None):
        tree = tree or _tree(data_prefix)
        self.classes = list(FASHION_MNIST_CLASSES)
        self.skipped: list[dict] = []
        self._splits = []
        limits = {"train": train_limit, "test": test_limit}
        for split, stem in self.SPLITS.items():
            images_file = idx_file(tree, f"{stem}-images-idx3-ubyte")
            labels_file = idx_file(tree, f"{stem}-labels-idx1-ubyte")
            if images_file is None or labels_file is None:
                raise DataError(f"Fashion-MNIST folder {tree.root} lacks {stem}-images-idx3-ubyte[.gz] "
                                f"or {stem}-labels-idx1-ubyte[.gz]")
            images_file, labels_file = tree.uri(images_file), tree.uri(labels_file)
            images, labels = (read_idx(f, storage.read_bytes(f)) for f in (images_file, labels_file))
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
                 test_limit: int = 0, tree: FileTree | None = None):
        self.tree = tree or _tree(data_prefix)
        self.data_prefix = self.tree.root
        self.skipped: list[dict] = []
        if ann_file is None:
            items, self.classes = self._scan_folders(classes)
        else:
            items, self.classes = self._read_list(ann_file, classes)
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
            classes = [d for d in self.tree.subdirs() if not d.startswith(".")]
        if not classes:
            raise DataError(f"no class folders in {self.data_prefix}: expected {self.data_prefix}/<class>/<image>")
        items = []
        for label, name in enumerate(classes):
            for rel in self.tree.files_below(name):
                if any(part.startswith(".") for part in PurePosixPath(rel).parts):
                    continue
                suffix = PurePosixPath(rel).suffix
                if suffix.lower() not in IMG_EXTENSIONS:
                    self.skipped.append({"input": rel, "reason": f"not an image file (extension {suffix!r})"})
                    continue
                items.append((rel, label))
        return items, list(classes)

    def _read_list(self, ann_file: str, classes: list[str] | None) -> tuple[list[tuple[str, int]], list[str]]:
        ann_name = ann_file.rstrip("/").rsplit("/", 1)[-1]
        if not _is_file(ann_file):
            raise DataError(f"dataset path not found: {ann_file}")
        text = storage.read_text(ann_file)
        entries = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            rel, _, label = line.strip().rpartition(" ")
            if not rel or not label.lstrip("-").isdigit() or int(label) < 0:
                self.skipped.append({"input": f"{ann_name}:{lineno}",
                                     "reason": f"expected '<path> <label>', got {line.strip()!r}"})
                continue
            entries.append((PurePosixPath(rel.strip()).as_posix(), int(label)))
        if classes is None:
            classes = _names_from_folders(entries)
        items = []
        for rel, label in entries:
            if label >= len(classes):
                self.skipped.append({"input": rel, "reason": f"label {label} is outside the {len(classes)} classes"})
            elif not self.tree.is_file(rel):
                self.skipped.append({"input": rel, "reason": f"file not found under {self.data_prefix}"})
            else:
                items.append((rel, label))
        return items, list(classes)

    def __len__(self) -> int:
        return len(self._items)

    def iter_from(self, start: int = 0) -> Iterator[Entry]:
        for pos in range(start, len(self._items)):
            rel, label, split = self._items[pos]
            yield pos, rel, self.tree.reader(rel), label, split


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


def _first(tree: FileTree, names: tuple[str, ...], kind: str) -> str | None:
    test = tree.is_dir if kind == "dir" else tree.is_file
    return next((n for n in names if test(n)), None)


def source_from_uri(uri: str, *, train_limit: int = 0, test_limit: int = 0, test_fraction: float = 0.2,
                    data_prefix: str | None = None):
    """The raw source that `uri` (a local path or an s3:// URI) names, with train/test splits assigned.

    - "fashion-mnist", or a folder holding IDX files: FashionMNIST;
    - a PASCAL VOC2007 layout (JPEGImages/ + ImageSets/Main/, in the folder, its VOC2007/ or
      VOCdevkit/VOC2007/): voc.VOC, multi-label (trainval -> 'train', test -> 'test');
    - a folder with `meta/train.txt` (the seed's ImageNet layout): list files under `train/`, `val/`;
    - a folder with `train/` and `val/` (or `test/`) class folders: those splits ('val' becomes 'test');
    - any other folder: class folders, with a stable `test_fraction` held out;
    - a `.txt` list file (data_prefix: its folder unless given); a sibling of `train.txt` named
      `val.txt` / `test.txt` gives the test split.
    The folder is listed once; images are read one by one as the source is iterated.
    """
    uri = str(uri)
    limits = dict(train_limit=train_limit, test_limit=test_limit)
    if uri == "fashion-mnist":
        uri = FASHION_MNIST_DIR
    if uri.endswith(".txt"):
        folder, _, name = uri.rstrip("/").rpartition("/")
        folder = folder or "."
        if not _is_file(uri):
            raise DataError(f"dataset path not found: {uri}")
        tree = _tree(data_prefix or folder)
        siblings = _tree(folder) if data_prefix else tree
        other = _first(siblings, ("val.txt", "test.txt"), "file") if name == "train.txt" else None
        if other is None:
            return ImageNet(tree.root, ann_file=uri, test_fraction=test_fraction, tree=tree, **limits)
        train = ImageNet(tree.root, ann_file=uri, split="train", train_limit=train_limit, tree=tree)
        test = ImageNet(tree.root, ann_file=siblings.uri(other), split="test", test_limit=test_limit, tree=tree)
        return SplitSources([train, test], ["", ""], _merge_names(train.classes, test.classes))
    if not storage.is_s3(uri) and Path(uri).is_file():
        raise DataError(f"unsupported dataset file {uri}: expected a folder or a .txt list file")
    tree = _tree(uri)
    if has_idx_files(tree):
        return FashionMNIST(tree.root, tree=tree, **limits)
    from .voc import VOC, find_voc_root

    voc_root = find_voc_root(tree)
    if voc_root is not None:
        return VOC(tree.sub(voc_root) if voc_root else tree, **limits)

    if tree.is_file("meta/train.txt") and tree.is_dir("train"):
        sources = [ImageNet(tree.uri("train"), ann_file=tree.uri("meta/train.txt"), split="train",
                            train_limit=train_limit, tree=tree.sub("train"))]
        prefixes = ["train/"]
        for name in ("val", "test"):
            if tree.is_file(f"meta/{name}.txt") and tree.is_dir(name):
                sources.append(ImageNet(tree.uri(name), ann_file=tree.uri(f"meta/{name}.txt"), split="test",
                                        test_limit=test_limit, tree=tree.sub(name)))
                prefixes.append(f"{name}/")
                break
        return SplitSources(sources, prefixes, _merge_names(*(s.classes for s in sources)))

    test_dir = _first(tree, ("val", "test"), "dir")
    if tree.is_dir("train") and test_dir is not None:
        trees = [tree.sub("train"), tree.sub(test_dir)]
        classes = sorted({d for t in trees for d in t.subdirs() if not d.startswith(".")})
        train = ImageNet(trees[0].root, classes=classes, split="train", train_limit=train_limit, tree=trees[0])
        test = ImageNet(trees[1].root, classes=classes, split="test", test_limit=test_limit, tree=trees[1])
        return SplitSources([train, test], ["train/", f"{test_dir}/"], classes)
    return ImageNet(tree.root, test_fraction=test_fraction, tree=tree, **limits)


def load_manifest(root: str, expected: str = DATASET_FORMAT, run: str = "the prep stage") -> dict:
    """The manifest of a published dataset of format `expected`, or a DataError saying what is missing."""
    uri = storage.join(root, MANIFEST)
    if not storage.is_complete(root) or not storage.exists(uri):
        raise DataError(f"no complete dataset at {root}: {uri} is missing or was not fully published "
                        f"(run {run} first)")
    try:
        manifest = json.loads(storage.read_text(uri))
    except (ValueError, UnicodeDecodeError) as err:
        raise DataError(f"{uri} is not valid JSON: {err}") from err
    if manifest.get("format") != expected:
        raise DataError(f"{uri} has format {manifest.get('format')!r}, expected {expected!r} ({run})")
    return manifest
