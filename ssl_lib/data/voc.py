"""PASCAL VOC2007 read as the seed's VOC07 benchmarks read it: one label vector per image from
`ImageSets/Main/<class>_<set>.txt` (1 present, -1 absent, 0 only difficult instances), images in
`JPEGImages/<id>.jpg`, objects in `Annotations/<id>.xml` (`parse_annotation`, which detection reuses).

The layout is found at the folder given, in its `VOC2007/` or in `VOCdevkit/VOC2007/`, local or
s3://. Splits: train = trainval, test = test. Everything is checked before prep writes a byte: a label file naming
an image that is not there, a value outside {1, -1, 0}, a malformed annotation, an image missing
from a class's file, a class with no positives in a split -> DataError naming the file, line and value.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .. import storage
from ..errors import DataError
from .sources import Entry, FileTree, RawSource, balanced_first

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
MAIN = "ImageSets/Main"
IMAGE_SETS = {"train": "trainval", "test": "test"}  # our split: VOC's image set
VOC_ROOTS = ("", "VOC2007", "VOCdevkit/VOC2007")
LABEL_VALUES = (1, -1, 0)


@dataclass(frozen=True)
class VOCObject:
    name: str
    bbox: tuple[int, int, int, int]  # xmin, ymin, xmax, ymax: VOC's 1-based inclusive pixel coordinates
    difficult: bool
    truncated: bool = False
    pose: str = "Unspecified"


@dataclass(frozen=True)
class VOCAnnotation:
    filename: str
    width: int
    height: int
    depth: int
    segmented: bool
    objects: tuple[VOCObject, ...]


def _int(node: ET.Element, path: str, where: str, default: int | None = None) -> int:
    text = node.findtext(path)
    if text is None or not text.strip():
        if default is not None:
            return default
        raise DataError(f"{where} lacks <{path}>")
    try:
        return int(float(text))  # mmdet's reading: some VOC2012 boxes are written as floats
    except ValueError:
        raise DataError(f"{where} has <{path}> {text.strip()!r}, expected a number") from None


def parse_annotation(data: bytes | str | Path, name: str | None = None) -> VOCAnnotation:
    """One `Annotations/<id>.xml`: size and objects (name, bbox, difficult, truncated, pose).
    `data` is the file's bytes or its path; `name` is what errors call it (default: the path)."""
    if isinstance(data, (str, Path)):
        name = name or str(data)
        data = Path(data).read_bytes()
    name = name or "annotation"
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        raise DataError(f"{name}: malformed XML ({err})") from None
    if root.tag != "annotation":
        raise DataError(f"{name}: root element is <{root.tag}>, expected <annotation>")
    size = root.find("size")
    if size is None:
        raise DataError(f"{name} lacks <size>")
    objects = []
    for k, obj in enumerate(root.findall("object")):
        label = (obj.findtext("name") or "").strip()
        where = f"{name}: object {k} ({label or 'no name'})"
        if not label:
            raise DataError(f"{where} lacks <name>")
        box = obj.find("bndbox")
        if box is None:
            raise DataError(f"{where} lacks <bndbox>")
        bbox = tuple(_int(box, key, where) for key in ("xmin", "ymin", "xmax", "ymax"))
        if bbox[2] < bbox[0] or bbox[3] < bbox[1]:
            raise DataError(f"{where} has an empty box {bbox}: xmax < xmin or ymax < ymin")
        pose = (obj.findtext("pose") or "Unspecified").strip()
        objects.append(VOCObject(label, bbox, bool(_int(obj, "difficult", where, 0)),
                                 bool(_int(obj, "truncated", where, 0)), pose))
    return VOCAnnotation((root.findtext("filename") or "").strip(), _int(size, "width", name),
                         _int(size, "height", name), _int(size, "depth", name, 3),
                         bool(_int(root, "segmented", name, 0)), tuple(objects))


def find_voc_root(tree: FileTree) -> str | None:
    """Where in `tree` the VOC2007 layout (JPEGImages/ and ImageSets/Main/) is: "", "VOC2007", ... or None."""
    return next((root for root in VOC_ROOTS
                 if tree.is_dir(f"{root}/JPEGImages".lstrip("/")) and tree.is_dir(f"{root}/{MAIN}".lstrip("/"))), None)


def _class_files(tree: FileTree) -> dict[str, set[str]]:
    """{image set: classes with a `<class>_<set>.txt`} in ImageSets/Main."""
    found: dict[str, set[str]] = {}
    for rel in tree.files_below(MAIN):
        match = re.fullmatch(rf"{MAIN}/([^/]+)_([^_/]+)\.txt", rel)
        if match:
            found.setdefault(match.group(2), set()).add(match.group(1))
    return found


def _ordered(names: set[str]) -> list[str]:
    """VOC's class order (or the mosaic's) when the names are that set; sorted otherwise."""
    from .mosaic import MOSAIC_CLASSES

    for known in (VOC_CLASSES, MOSAIC_CLASSES):
        if names == set(known):
            return list(known)
    return sorted(names)


class VOC(RawSource):
    """A VOC2007-layout folder (`tree`: its root) as a multi-label raw source: each input's label is
    an int8 vector over `classes` of 1 / -1 / 0. `train_limit` / `test_limit` (0 = all) keep the
    first images of each split taken round-robin over their first present class."""

    multi_label = True

    def __init__(self, tree: FileTree, train_limit: int = 0, test_limit: int = 0):
        self.tree, self.skipped = tree, []
        sets = _class_files(tree)
        if not all(image_set in sets for image_set in IMAGE_SETS.values()):
            raise DataError(f"VOC folder {tree.root} has no ImageSets/Main/<class>_trainval.txt and "
                            f"<class>_test.txt files (found image sets: {', '.join(sorted(sets)) or 'none'})")
        self.classes = _ordered(sets["trainval"] | sets["test"])
        self._items: list[tuple[str, np.ndarray, str]] = []
        for split, limit in (("train", train_limit), ("test", test_limit)):
            ids, labels = self._read_split(IMAGE_SETS[split])
            primary = np.where((labels == 1).any(1), (labels == 1).argmax(1), len(self.classes))
            keep = balanced_first(primary, limit)
            ids, labels = [ids[i] for i in keep], labels[keep]
            self._check_positives(split, labels, limited=len(keep) < len(primary))
            self._check_annotations(ids)
            self._items.extend((f"JPEGImages/{i}.jpg", row, split) for i, row in zip(ids, labels))

    def _lines(self, rel: str) -> Iterator[tuple[int, list[str]]]:
        for lineno, line in enumerate(storage.read_text(self.tree.uri(rel)).splitlines(), start=1):
            if line.strip():
                yield lineno, line.split()

    def _read_split(self, image_set: str) -> tuple[list[str], np.ndarray]:
        """Ids (in the order listed) and their (N, C) labels from the class files of `image_set`."""
        listed, list_file = None, f"{MAIN}/{image_set}.txt"  # listed: the split's ids, in order (a dict)
        if self.tree.is_file(list_file):
            listed = {}
            for lineno, fields in self._lines(list_file):
                if len(fields) != 1:
                    raise DataError(f"{self.tree.uri(list_file)}:{lineno}: expected one image id, "
                                    f"got {' '.join(fields)!r}")
                listed[fields[0]] = None
        columns = []
        for cls in self.classes:
            rel = f"{MAIN}/{cls}_{image_set}.txt"
            uri = self.tree.uri(rel)
            if not self.tree.is_file(rel):
                raise DataError(f"{uri} is missing: every class needs a label file for each image set")
            values: dict[str, int] = {}
            for lineno, fields in self._lines(rel):
                where = f"{uri}:{lineno}"
                if len(fields) != 2:
                    raise DataError(f"{where}: expected '<image id> <1|-1|0>', got {' '.join(fields)!r}")
                image_id, value = fields
                if value.lstrip("-").isdigit() and int(value) in LABEL_VALUES:
                    value = int(value)
                else:
                    raise DataError(f"{where}: label {value!r} for image {image_id} is not 1, -1 or 0")
                if image_id in values:
                    raise DataError(f"{where}: image {image_id} is listed twice")
                if not self.tree.is_file(f"JPEGImages/{image_id}.jpg"):
                    raise DataError(f"{where}: image {image_id} is not there "
                                    f"({self.tree.uri(f'JPEGImages/{image_id}.jpg')} not found)")
                if listed is not None and image_id not in listed:
                    raise DataError(f"{where}: image {image_id} is not in {self.tree.uri(list_file)}")
                values[image_id] = value
            if listed is None:
                listed, list_file = values, rel
            missing = [i for i in listed if i not in values]
            if missing:
                raise DataError(f"{uri} has no line for image {missing[0]} (listed in {self.tree.uri(list_file)})"
                                + (f" nor for {len(missing) - 1} more" if len(missing) > 1 else ""))
            columns.append(values)
        ids = list(listed)
        labels = np.array([[column[i] for column in columns] for i in ids], dtype=np.int8).reshape(len(ids), -1)
        return ids, labels

    def _check_positives(self, split: str, labels: np.ndarray, limited: bool) -> None:
        image_set = IMAGE_SETS[split]
        for c, cls in enumerate(self.classes):
            if not (labels[:, c] == 1).any():
                where = f"the first {len(labels)} images kept by the {split} limit" if limited else \
                    self.tree.uri(f"{MAIN}/{cls}_{image_set}.txt")
                raise DataError(f"class {cls} has no positives in split {split} ({image_set}): no label 1 in {where}")

    def _check_annotations(self, ids: list[str]) -> None:
        """Every image's Annotations/<id>.xml is there, parses, and names only known classes."""
        known = set(self.classes)

        def check(image_id: str) -> None:
            rel = f"Annotations/{image_id}.xml"
            uri = self.tree.uri(rel)
            if not self.tree.is_file(rel):
                raise DataError(f"{uri} is missing (image {image_id} is labelled in ImageSets/Main)")
            try:
                data = self.tree.reader(rel)()
            except OSError as err:
                raise DataError(f"cannot read {uri}: {err}") from err
            for obj in parse_annotation(data, uri).objects:
                if obj.name not in known:
                    raise DataError(f"{uri}: object class {obj.name!r} is not one of the {len(known)} classes "
                                    f"of ImageSets/Main")

        if storage.is_s3(self.tree.root):  # one request per file: overlap them
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(check, ids))
        else:
            for image_id in ids:
                check(image_id)

    def check_positives_after(self, skipped: list[dict]) -> None:
        """A DataError when the images prep skipped (undecodable) took a class's last positive in a split."""
        gone = {s["input"] for s in skipped}
        for split in IMAGE_SETS:
            kept = np.array([row for name, row, s in self._items if s == split and name not in gone], np.int8)
            for c in np.flatnonzero(~(kept.reshape(-1, len(self.classes)) == 1).any(0)):
                raise DataError(f"class {self.classes[c]} has no positives left in split {split}: every image "
                                f"labelled 1 could not be decoded (see the skipped inputs)")

    def __len__(self) -> int:
        return len(self._items)

    def iter_from(self, start: int = 0) -> Iterator[Entry]:
        for pos in range(start, len(self._items)):
            rel, labels, split = self._items[pos]
            yield pos, rel, self.tree.reader(rel), labels, split
