"""The detection / segmentation dataset artifact ("ssl-detseg-v1"), built by `prep --task detseg` and
read by the `detection` and `segmentation` stages through MMDetection's and MMSegmentation's own
dataset classes, so the files sit in those engines' standard layouts:

    VOCdevkit/VOC2007/{JPEGImages,Annotations,ImageSets/Main}   (+ VOCdevkit/VOC2012/...: VOC07+12)
    VOCdevkit/VOC20xx/{SegmentationClass,SegmentationClassAug,ImageSets/Segmentation}
    coco/annotations/instances_{train,val}2017.json, coco/{train,val}2017/
    cityscapes/leftImg8bit/{train,val}/<city>/*_leftImg8bit.png, cityscapes/gtFine/.../*_gtFine_labelTrainIds.png

plus `manifest.json` (layouts, classes, counts; every path relative to the artifact) and `_SUCCESS`.
Readers find each layout in the source (local or s3://): VOC in `VOCdevkit/VOC20xx`, `VOC20xx` or a
bare VOC folder (detection: VOC2007 trainval [+ VOC2012 trainval] / VOC2007 test, difficult boxes
kept, as mmdet keeps them with ignore_flag=1; segmentation: VOC2012 aug.txt + SegmentationClassAug
/ val, or train / val, or VOC2007 trainval / test), COCO2017 (`coco/` or the folder itself) and
Cityscapes (`cityscapes/` or the folder itself). Everything is checked before a byte is written: listed
images and annotations exist and parse, COCO files index with pycocotools, train and test agree on
their classes, boxes / masks are there, mask values are classes or 255 (ignore). The output is
published whole through `storage.publish_dir`, so a failed build leaves nothing visible.

The built-in `fashion-mnist-mosaic` is generated (ssl_lib.data.mosaic) into a temporary
VOCdevkit/VOC2007 and read back through the same readers: it gives voc_det, voc_seg and coco (its
`annotations/instances_{trainval,test}.json`, copied to `coco/annotations/`, over the VOC images).

How the engines read a layout (`root`: the artifact folder, `m`: its manifest, `layout`: m["layouts"][name],
`e`: one entry of a split; tested in tests/test_detseg_data.py with mmdet 3.3.0 and mmsegmentation 1.2.2):

    voc_det, one dict per entry of m["layouts"]["voc_det"]["train"] (ConcatDataset them) / ["test"]:
        dict(type="VOCDataset", data_root=f"{root}/{e['data_root']}",
             ann_file=e["ann_file"][len(e["data_root"]) + 1:],   # "ImageSets/Main/trainval.txt"
             data_prefix=dict(sub_data_root=""), metainfo=dict(classes=tuple(layout["classes"])))
        or, the same data list in mmdet's own voc0712 config style:
        dict(type="VOCDataset", data_root=root, ann_file=e["ann_file"],
             data_prefix=dict(sub_data_root=e["data_root"] + "/"), metainfo=...)
        (a data_root / sub_data_root holding "VOC2007" makes metainfo["dataset_type"] "VOC2007")
    coco, split s = "train" / "test":
        dict(type="CocoDataset", data_root=root, ann_file=layout[s]["ann_file"],
             data_prefix=dict(img=layout[s]["img_prefix"] + "/"), metainfo=dict(classes=tuple(layout["classes"])))
    voc_seg (BaseSegDataset: PascalVOCDataset only accepts a subset of VOC's own 21 classes):
        dict(type="BaseSegDataset", data_root=root, ann_file=layout[s]["ann_file"],
             data_prefix=dict(img_path=layout[s]["img_prefix"], seg_map_path=layout[s]["seg_prefix"]),
             img_suffix=".jpg", seg_map_suffix=".png", reduce_zero_label=False,
             metainfo=dict(classes=tuple(layout["classes"])))
    cityscapes:
        dict(type="CityscapesDataset", data_root=root,
             data_prefix=dict(img_path=layout[s]["img_prefix"], seg_map_path=layout[s]["seg_prefix"]))
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np
from PIL import Image

from .. import storage
from ..errors import ConfigError, DataError
from . import mosaic, sources
from .sources import MANIFEST, FileTree
from .voc import VOC_CLASSES, _ordered, parse_annotation

FORMAT = "ssl-detseg-v1"
MOSAIC = "fashion-mnist-mosaic"
IGNORE = 255  # mask value of pixels no class is scored on (VOC's void edges, Cityscapes' unlabelled)
PROGRESS_MIN = 300
CITYSCAPES_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                      "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
                      "motorcycle", "bicycle")  # the 19 train ids, in mmseg's CityscapesDataset order
VOC_FOLDERS = {"VOC2007": ("VOCdevkit/VOC2007", "VOC2007"), "VOC2012": ("VOCdevkit/VOC2012", "VOC2012")}
# Segmentation image sets per year, in order of preference: (train list, its masks, test list).
SEG_SPLITS = {"VOC2012": (("aug", "SegmentationClassAug", "val"), ("train", "SegmentationClass", "val")),
              "VOC2007": (("trainval", "SegmentationClass", "test"), ("train", "SegmentationClass", "val"))}
COCO_SPLITS = (("train2017", "val2017"),)


def _rel(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


class _Plan:
    """What the artifact will hold, filled by the readers once each has checked its part: files
    copied from the source tree, files written from memory, and the manifest's layouts and counts."""

    def __init__(self, tree: FileTree, limits: dict[str, int]):
        self.tree, self.limits = tree, limits
        self.copies: dict[str, str] = {}  # artifact path -> source path
        self.writes: dict[str, bytes] = {}
        self.layouts: dict[str, dict] = {}
        self.counts: dict[str, dict] = {}

    def read(self, rel: str) -> bytes:
        if not self.tree.is_file(rel):
            raise DataError(f"{self.tree.uri(rel)} is missing")
        try:
            return self.tree.reader(rel)()
        except OSError as err:
            raise DataError(f"cannot read {self.tree.uri(rel)}: {err}") from err

    def ids(self, rel: str) -> list[str]:
        """The image ids of a VOC list file, one per line."""
        ids = []
        for lineno, line in enumerate(self.read(rel).decode().splitlines(), start=1):
            fields = line.split()
            if len(fields) > 1:
                raise DataError(f"{self.tree.uri(rel)}:{lineno}: expected one image id, got {line.strip()!r}")
            ids.extend(fields)
        if not ids:
            raise DataError(f"{self.tree.uri(rel)} lists no images")
        return ids

    def each(self, fn: Callable, items: list, desc: str) -> list:
        """`fn` over `items`, overlapped for s3:// (one request per file), with progress when many."""
        from tqdm import tqdm

        with ThreadPoolExecutor(16 if storage.is_s3(self.tree.root) else 1) as pool:
            return list(tqdm(pool.map(fn, items), total=len(items), desc=desc, unit="file", file=sys.stderr,
                             disable=len(items) <= PROGRESS_MIN))

    def limited(self, split: str, items: list) -> list:
        return items[:self.limits[split]] if self.limits[split] else items


def _split_classes(where: dict[str, list[str]], names: dict[str, list]) -> list:
    """The one class list train and test share; a DataError naming both when they differ."""
    if names["train"] != names["test"]:
        raise DataError(f"the class lists differ between train ({', '.join(where['train'])}: {list(names['train'])}) "
                        f"and test ({', '.join(where['test'])}: {list(names['test'])})")
    return list(names["train"])


# --- VOC detection ---------------------------------------------------------------------------------

def _voc_roots(tree: FileTree) -> dict[str, str]:
    """{"VOC2007": path in tree, ...} of the VOC folders (those with JPEGImages/)."""
    roots = {}
    for year, candidates in VOC_FOLDERS.items():
        root = next((c for c in candidates if tree.is_dir(f"{c}/JPEGImages")), None)
        if root is not None:
            roots[year] = root
    if not roots and tree.is_dir("JPEGImages"):  # a bare VOC folder: its name says the year
        roots["VOC2012" if "2012" in PurePosixPath(tree.root).name else "VOC2007"] = ""
    return roots


def _voc_objects(plan: _Plan, root: str, image_id: str, list_file: str) -> tuple:
    image = _rel(root, "JPEGImages", f"{image_id}.jpg")
    if not plan.tree.is_file(image):
        raise DataError(f"image {plan.tree.uri(image)} is missing (listed in {plan.tree.uri(list_file)})")
    xml = _rel(root, "Annotations", f"{image_id}.xml")
    if not plan.tree.is_file(xml):
        raise DataError(f"annotation {plan.tree.uri(xml)} is missing (image {image_id} is listed in "
                        f"{plan.tree.uri(list_file)})")
    return parse_annotation(plan.read(xml), plan.tree.uri(xml)).objects


def read_voc_det(plan: _Plan, roots: dict[str, str]) -> None:
    """VOC2007 trainval (+ VOC2012 trainval) for training, VOC2007 test for testing: the MoCo
    protocol's VOC07+12. Difficult boxes stay in the XML; mmdet reads them as ignore_flag=1."""
    tree = plan.tree
    v07 = roots["VOC2007"]
    if not tree.is_dir(_rel(v07, "Annotations")):
        raise DataError(f"VOC folder {tree.uri(v07)} has no Annotations/: a detection dataset needs boxes")
    parts = {"train": [(year, root, "trainval") for year, root in roots.items()
                       if tree.is_file(_rel(root, "ImageSets/Main/trainval.txt"))],
             "test": [("VOC2007", v07, "test")]}
    if not all(tree.is_file(_rel(v07, f"ImageSets/Main/{s}.txt")) for s in ("trainval", "test")):
        raise DataError(f"VOC folder {tree.uri(v07)} needs ImageSets/Main/trainval.txt and test.txt")
    layout, where, names, counts = {}, {}, {}, {}
    for split, sets in parts.items():
        entries, found, stats = [], set(), {"images": 0, "instances": 0, "difficult": 0}
        left = plan.limits[split] or None
        for year, root, image_set in sets:
            list_file = _rel(root, "ImageSets/Main", f"{image_set}.txt")
            ids = plan.ids(list_file)[:left]
            if not ids:
                continue
            left = left and left - len(ids)
            objects = plan.each(lambda i: _voc_objects(plan, root, i, list_file), ids, f"check {year} {image_set}")
            found |= {o.name for objs in objects for o in objs}
            stats["images"] += len(ids)
            stats["instances"] += sum(len(objs) for objs in objects)
            stats["difficult"] += sum(o.difficult for objs in objects for o in objs)
            dest = f"VOCdevkit/{year}"
            for i in ids:
                for folder, ext in (("JPEGImages", "jpg"), ("Annotations", "xml")):
                    plan.copies[f"{dest}/{folder}/{i}.{ext}"] = _rel(root, folder, f"{i}.{ext}")
            plan.writes[f"{dest}/ImageSets/Main/{image_set}.txt"] = "".join(f"{i}\n" for i in ids).encode()
            entries.append({"ann_file": f"{dest}/ImageSets/Main/{image_set}.txt", "data_root": dest,
                            "num_images": len(ids)})
            where.setdefault(split, []).append(tree.uri(list_file))
        if not stats["instances"]:
            raise DataError(f"no boxes in the {split} split of the VOC detection data "
                            f"({', '.join(where[split])}): every annotation has no <object>")
        layout[split], names[split], counts[split] = entries, _ordered(found), stats
    plan.layouts["voc_det"] = {"classes": _split_classes(where, names), **layout}
    plan.counts["voc_det"] = counts


# --- segmentation masks ----------------------------------------------------------------------------

def _mask_values(plan: _Plan, rel: str, num_classes: int) -> np.ndarray:
    """The values of one mask PNG; a DataError naming it when one is neither a class nor 255."""
    uri = plan.tree.uri(rel)
    try:
        with Image.open(io.BytesIO(plan.read(rel))) as img:
            if img.mode not in ("P", "L"):
                raise DataError(f"mask {uri} is a {img.mode} image: masks must hold class indices "
                                f"(a palette or greyscale PNG)")
            values = np.unique(np.asarray(img))
    except (OSError, ValueError) as err:
        raise DataError(f"mask {uri} cannot be decoded: {err}") from err
    bad = values[(values >= num_classes) & (values != IGNORE)]
    if bad.size:
        raise DataError(f"mask {uri} has value {int(bad[0])}, outside the {num_classes} classes "
                        f"(0..{num_classes - 1}) and not {IGNORE} (ignore)")
    return values


def _check_masks(plan: _Plan, pairs: list[tuple[str, str]], classes: list[str], what: str) -> None:
    """Every (image, mask) pair is there, every mask holds classes or 255, and some pixel is an object."""
    for image, mask in pairs:
        for rel, kind in ((image, "image"), (mask, "mask")):
            if not plan.tree.is_file(rel):
                raise DataError(f"{kind} {plan.tree.uri(rel)} is missing ({what})")
    values = plan.each(lambda pair: _mask_values(plan, pair[1], len(classes)), pairs, f"check {what}")
    first = 1 if classes[0] == "background" else 0
    if not any(((v >= first) & (v < len(classes))).any() for v in values):
        raise DataError(f"no masks in {what}: no pixel of any mask is labelled with an object class")


def read_voc_seg(plan: _Plan, year: str, root: str, classes: list[str]) -> None:
    tree = plan.tree
    sets = tree.uri(_rel(root, "ImageSets/Segmentation"))
    choice = next(((train, masks, test) for train, masks, test in SEG_SPLITS[year]
                   if tree.is_file(_rel(root, "ImageSets/Segmentation", f"{train}.txt"))
                   and tree.is_file(_rel(root, "ImageSets/Segmentation", f"{test}.txt"))
                   and tree.is_dir(_rel(root, masks)) and tree.is_dir(_rel(root, "SegmentationClass"))), None)
    if choice is None:
        raise DataError(f"{sets} has no usable pair of image sets with their masks: expected "
                        + " or ".join(f"{a}.txt + {c}.txt with {m}/ (and SegmentationClass/ for {c})"
                                      for a, m, c in SEG_SPLITS[year]))
    train, train_masks, test = choice
    layout, counts, dest = {"classes": classes}, {}, f"VOCdevkit/{year}"
    for split, image_set, masks in (("train", train, train_masks), ("test", test, "SegmentationClass")):
        list_file = _rel(root, "ImageSets/Segmentation", f"{image_set}.txt")
        ids = plan.limited(split, plan.ids(list_file))
        pairs = [(_rel(root, "JPEGImages", f"{i}.jpg"), _rel(root, masks, f"{i}.png")) for i in ids]
        _check_masks(plan, pairs, classes, f"{year} {image_set}, listed in {tree.uri(list_file)}")
        for i, (image, mask) in zip(ids, pairs):
            plan.copies[f"{dest}/JPEGImages/{i}.jpg"] = image
            plan.copies[f"{dest}/{masks}/{i}.png"] = mask
        ann_file = f"{dest}/ImageSets/Segmentation/{image_set}.txt"
        plan.writes[ann_file] = "".join(f"{i}\n" for i in ids).encode()
        layout[split] = {"ann_file": ann_file, "img_prefix": f"{dest}/JPEGImages", "seg_prefix": f"{dest}/{masks}",
                         "num_images": len(ids)}
        counts[split] = {"images": len(ids)}
    plan.layouts["voc_seg"], plan.counts["voc_seg"] = layout, counts


# --- COCO ------------------------------------------------------------------------------------------

def _coco_index(uri: str, data: dict):
    """pycocotools' index of an instances file; a DataError when it cannot build one."""
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = data
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints "creating index..."
            coco.createIndex()
    except (KeyError, TypeError) as err:
        raise DataError(f"{uri}: pycocotools cannot index it (an entry lacks {err})") from err
    return coco


def _check_coco_annotations(uri: str, coco) -> dict:
    stats = {"images": len(coco.dataset["images"]), "instances": 0, "crowd": 0, "masks": 0}
    seen = set()
    for ann in coco.dataset["annotations"]:
        where = f"{uri}: annotation {ann['id']}"
        if ann["id"] in seen:
            raise DataError(f"{where} is not the only annotation with that id")
        seen.add(ann["id"])
        if ann.get("image_id") not in coco.imgs or ann.get("category_id") not in coco.cats:
            raise DataError(f"{where} names image {ann.get('image_id')} / category {ann.get('category_id')}, "
                            f"which the file does not define")
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)
                and bbox[2] >= 0 and bbox[3] >= 0):
            raise DataError(f"{where} has bbox {bbox!r}, expected [x, y, width, height] with width, height >= 0")
        if ann.get("iscrowd", 0) not in (0, 1):
            raise DataError(f"{where} has iscrowd {ann['iscrowd']!r}, expected 0 or 1")
        if ann.get("segmentation"):
            try:
                coco.annToRLE(ann)  # polygons or RLE, as Mask R-CNN's loader decodes them
            except Exception as err:  # pycocotools raises assorted types on a malformed mask
                raise DataError(f"{where} has a segmentation pycocotools cannot decode: {err}") from err
            stats["masks"] += 1
        stats["crowd" if ann.get("iscrowd") else "instances"] += 1
    return stats


def _coco_split(plan: _Plan, split: str, json_rel: str, images_rel: str) -> tuple[dict, bytes | None, dict]:
    """One instances file checked: (its data, its bytes when written unchanged, counts)."""
    uri = plan.tree.uri(json_rel)
    raw = plan.read(json_rel)
    try:
        data = json.loads(raw)
    except ValueError as err:
        raise DataError(f"{uri} is not valid JSON: {err}") from err
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key) if isinstance(data, dict) else None, list):
            raise DataError(f"{uri} lacks the {key!r} list of a COCO instances file")
    if plan.limits[split] and plan.limits[split] < len(data["images"]):
        images = data["images"][:plan.limits[split]]
        kept = {img.get("id") for img in images}
        data, raw = dict(data, images=images, annotations=[a for a in data["annotations"]
                                                           if a.get("image_id") in kept]), None
    coco = _coco_index(uri, data)
    for img in data["images"]:
        rel = _rel(images_rel, str(img.get("file_name", "")))
        if not img.get("file_name") or not plan.tree.is_file(rel):
            raise DataError(f"image {plan.tree.uri(rel)} is missing (image {img.get('id')} of {uri})")
    stats = _check_coco_annotations(uri, coco)
    if not stats["instances"] + stats["crowd"]:
        raise DataError(f"no boxes in {uri}: it has no annotations")
    if not stats["masks"]:
        raise DataError(f"no masks in {uri}: no annotation has a segmentation (the COCO protocol trains Mask R-CNN)")
    return data, raw, stats


def read_coco(plan: _Plan, found: list[tuple[str, str, str, str]]) -> None:
    """`found`: per split (train, test), the instances file and image folder in the source and the
    artifact. Category lists (ids and names, in file order: mmdet's label order) must agree."""
    layout, counts, where, names = {}, {}, {}, {}
    for split, (json_rel, images_rel, json_dest, images_dest) in zip(("train", "test"), found):
        data, raw, stats = _coco_split(plan, split, json_rel, images_rel)
        if raw is None:
            plan.writes[json_dest] = json.dumps(data, separators=(",", ":")).encode()
        else:
            plan.copies[json_dest] = json_rel
        for img in data["images"]:
            plan.copies[_rel(images_dest, img["file_name"])] = _rel(images_rel, img["file_name"])
        where[split] = [plan.tree.uri(json_rel)]
        names[split] = [(c.get("id"), c.get("name")) for c in data["categories"]]
        layout[split] = {"ann_file": json_dest, "img_prefix": images_dest, "num_images": stats["images"]}
        counts[split] = stats
    classes = [name for _, name in _split_classes(where, names)]
    plan.layouts["coco"], plan.counts["coco"] = {"classes": classes, **layout}, counts


def _coco_sources(tree: FileTree, voc_roots: dict[str, str]) -> list[tuple[str, str, str, str]] | None:
    for base in ("coco", ""):
        for train, test in COCO_SPLITS:
            if all(tree.is_file(_rel(base, "annotations", f"instances_{s}.json")) for s in (train, test)):
                return [(_rel(base, "annotations", f"instances_{s}.json"), _rel(base, s),
                         f"coco/annotations/instances_{s}.json", f"coco/{s}") for s in (train, test)]
    root = voc_roots.get("VOC2007")  # the mosaic's COCO files, over its VOC images
    if root is not None and all(tree.is_file(_rel(root, f"annotations/instances_{s}.json"))
                                for s in ("trainval", "test")):
        return [(_rel(root, f"annotations/instances_{s}.json"), _rel(root, "JPEGImages"),
                 f"coco/annotations/instances_{s}.json", "VOCdevkit/VOC2007/JPEGImages") for s in ("trainval", "test")]
    return None


# --- Cityscapes ------------------------------------------------------------------------------------

def read_cityscapes(plan: _Plan, base: str) -> None:
    tree, layout, counts = plan.tree, {"classes": list(CITYSCAPES_CLASSES)}, {}
    if not tree.is_dir(_rel(base, "gtFine")):
        raise DataError(f"Cityscapes folder {tree.uri(base)} has leftImg8bit/ but no gtFine/: no masks")
    for split, folder in (("train", "train"), ("test", "val")):
        images_dir = _rel(base, "leftImg8bit", folder)
        images = plan.limited(split, [f for f in tree.files_below(images_dir) if f.endswith("_leftImg8bit.png")])
        if not images:
            raise DataError(f"no *_leftImg8bit.png images in {tree.uri(images_dir)}")
        pairs = []
        for image in images:
            inner = image[len(images_dir) + 1:-len("_leftImg8bit.png")]
            mask = _rel(base, "gtFine", folder, f"{inner}_gtFine_labelTrainIds.png")
            if not tree.is_file(mask) and tree.is_file(mask.replace("labelTrainIds", "labelIds")):
                raise DataError(f"{tree.uri(mask)} is missing but its labelIds mask is there: convert gtFine to "
                                f"train ids first (cityscapesscripts' createTrainIdLabelImgs)")
            pairs.append((image, mask))
            plan.copies[f"cityscapes/leftImg8bit/{folder}/{inner}_leftImg8bit.png"] = image
            plan.copies[f"cityscapes/gtFine/{folder}/{inner}_gtFine_labelTrainIds.png"] = mask
        _check_masks(plan, pairs, layout["classes"], f"Cityscapes {folder}")
        layout[split] = {"img_prefix": f"cityscapes/leftImg8bit/{folder}",
                         "seg_prefix": f"cityscapes/gtFine/{folder}", "num_images": len(images)}
        counts[split] = {"images": len(images)}
    plan.layouts["cityscapes"], plan.counts["cityscapes"] = layout, counts


# --- the artifact ----------------------------------------------------------------------------------

def read_all(tree: FileTree, limits: dict[str, int]) -> _Plan:
    """Every layout the source holds, checked; a DataError when it holds none."""
    plan = _Plan(tree, limits)
    voc = _voc_roots(tree)
    if "VOC2007" in voc and tree.is_dir(_rel(voc["VOC2007"], "ImageSets/Main")):
        read_voc_det(plan, voc)
    seg_year = next((y for y in ("VOC2012", "VOC2007") if y in voc
                     and tree.is_dir(_rel(voc[y], "ImageSets/Segmentation"))), None)
    if seg_year is not None:
        det = plan.layouts.get("voc_det")
        read_voc_seg(plan, seg_year, voc[seg_year], ["background", *(det["classes"] if det else VOC_CLASSES)])
    coco = _coco_sources(tree, voc)
    if coco is not None:
        read_coco(plan, coco)
    city = next((b for b in ("cityscapes", "") if tree.is_dir(_rel(b, "leftImg8bit"))), None)
    if city is not None:
        read_cityscapes(plan, city)
    if not plan.layouts:
        raise DataError(f"no detection or segmentation dataset in {tree.root}: expected VOCdevkit/VOC2007 "
                        f"(Annotations/, ImageSets/Main or Segmentation), coco/annotations/instances_*2017.json "
                        f"or cityscapes/leftImg8bit + gtFine")
    return plan


@contextlib.contextmanager
def _open_source(source: str, limits: dict[str, int], mosaic_size: int, mosaic_seed: int):
    """(tree, limits the readers apply); the mosaic is generated at its limits and read whole."""
    if source != MOSAIC:
        yield FileTree(source), limits
        return
    print(f"prep: generating the Fashion-MNIST mosaic ({limits['train']} trainval + {limits['test']} test "
          f"images, {mosaic_size} px, seed {mosaic_seed})", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="ssl-mosaic-") as folder:
        mosaic.generate(Path(folder, "VOCdevkit/VOC2007"), limits["train"], limits["test"], mosaic_size, mosaic_seed)
        yield FileTree(folder), {"train": 0, "test": 0}


def _metrics(manifest: dict, output: str) -> dict:
    return {"layouts": sorted(manifest["layouts"]), "counts": manifest["counts"],
            "num_skipped": len(manifest["skipped"]), "manifest": storage.join(output, MANIFEST)}


def load_manifest(root: str) -> dict:
    """The manifest of a published det/seg dataset, or a DataError saying what is missing."""
    return sources.load_manifest(root, FORMAT, "prep --task detseg")


def build(source: str, output: str, train_limit: int = 0, test_limit: int = 0, mosaic_size: int = 96,
          mosaic_seed: int = 0, source_files: list | tuple = ()) -> dict:
    """Build the det/seg artifact at `output` from `source`. Limits keep the first N images of each
    split (0: all); for the mosaic they are the numbers generated (0: VOC2007's sizes).
    `source_files` (names, sizes, times of the source's files) makes the rerun fingerprint."""
    if train_limit < 0 or test_limit < 0:
        raise ConfigError(f"prep: limits must be >= 0 (0 = all), got train_limit={train_limit}, "
                          f"test_limit={test_limit}")
    limits = {"train": train_limit, "test": test_limit}
    params = {"task": "detseg", "train_limit": train_limit, "test_limit": test_limit}
    if source == MOSAIC:
        limits = {"train": train_limit or mosaic.DEFAULT_TRAIN, "test": test_limit or mosaic.DEFAULT_TEST}
        mosaic.check_params(limits["train"], limits["test"], mosaic_size)
        params.update(mosaic_size=mosaic_size, mosaic_seed=mosaic_seed, mosaic_version=mosaic.GENERATOR_VERSION)
    fingerprint = hashlib.sha256(json.dumps({"format": FORMAT, "source": source, "params": params,
                                             "files": list(source_files)}, sort_keys=True).encode()).hexdigest()
    with contextlib.suppress(DataError):
        existing = load_manifest(output)
        if existing.get("fingerprint") == fingerprint:
            print(f"prep: {output} already holds this dataset; nothing to do", file=sys.stderr)
            return _metrics(existing, output)

    with _open_source(source, limits, mosaic_size, mosaic_seed) as (tree, read_limits):
        plan = read_all(tree, read_limits)
        manifest = {"format": FORMAT, "source": source,
                    "name": MOSAIC if source == MOSAIC else PurePosixPath(source.rstrip("/")).name,
                    "layouts": plan.layouts, "counts": plan.counts, "skipped": [], "params": params,
                    "fingerprint": fingerprint}
        with storage.publish_dir(output) as staging:
            copies = sorted(plan.copies.items())
            plan.each(lambda item: storage.download(tree.uri(item[1]), staging / item[0]), copies, "copy")
            for rel, data in plan.writes.items():
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                (staging / rel).write_bytes(data)
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return _metrics(manifest, output)
