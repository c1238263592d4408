"""Fashion-MNIST mosaics written in the PASCAL VOC2007 layout: the built-in multi-label data set.

Each image is a `size` x `size` canvas (a dark, light or grey background with noise) holding 1-4
real Fashion-MNIST items, each coloured, scaled (some small), placed (some partly off the canvas)
and pasted in turn, so that later items occlude earlier ones. trainval images take their items from
Fashion-MNIST's train split, test images from its test split. An object whose visible part is small
or less than half of it is marked difficult, as VOC's annotators would. Written to `output`:

    JPEGImages/<id>.jpg                    the images
    Annotations/<id>.xml                   VOC XML: filename, size, objects (name, pose, truncated, difficult, bndbox)
    ImageSets/Main/{trainval,test}.txt     image ids
    ImageSets/Main/<class>_{trainval,test}.txt   '<id> <1|-1|0>': present, absent, only difficult instances
    ImageSets/Segmentation/{trainval,test}.txt
    SegmentationObject/<id>.png            VOC-palette PNG: object k of the XML is index k, 0 background,
    SegmentationClass/<id>.png             ... and class index 1..10; 255 marks the void soft edges
    annotations/instances_{trainval,test}.json   the same objects in COCO format (bbox [x, y, w, h],
                                           area, iscrowd 0, segmentation as uncompressed RLE, difficult)

Boxes are those of each object's visible pixels (VOC's rule). Every image is drawn from its own
seeded generator, so a set of N images is the first N of any larger set with the same seed.

    python -m ssl_lib.data.mosaic --output DIR --train 2000 --test 2000 [--size 96] [--seed 0]
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConfigError, DataError, exit_code
from .sources import FASHION_MNIST_DIR, FileTree, idx_file, read_idx

MOSAIC_CLASSES = ("tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                  "ankleboot")  # Fashion-MNIST's classes in its label order, named as VOC names classes
DEFAULT_TRAIN, DEFAULT_TEST = 5011, 4952  # VOC2007's trainval and test sizes
GENERATOR_VERSION = 1  # bump when the same seed would draw other images
SETS = {"trainval": ("train", 0, 1), "test": ("t10k", 1, 500001)}  # F-MNIST stem, seed code, first id
MAX_IMAGES = 500000  # test ids start where trainval ids end
ITEMS_P = (0.25, 0.35, 0.25, 0.15)  # 1, 2, 3 or 4 items per image
SIDE = (1 / 8, 0.6)  # an item's side, log-uniform, as a fraction of the canvas
MASK_ALPHA, EDGE_ALPHA = 0.2, 0.02  # item intensity above which a pixel is the object's; above EDGE: its void edge
SMALL = 1 / 10  # difficult when sqrt(visible pixels) < SMALL * size ...
MOSTLY_HIDDEN = 0.5  # ... or less than this share of the object is visible
KEEP_VISIBLE = 0.05  # a new item is placed elsewhere when it would leave an earlier one less than this
NOISE = 6.0


@dataclass
class _Object:
    cls: int
    mask: np.ndarray  # visible pixels
    box: tuple[int, int, int, int]  # of the visible pixels: x0, y0, x1, y1, 0-based inclusive
    area: int  # visible pixels
    difficult: bool
    truncated: bool


@lru_cache(maxsize=4)
def _noise_bank(size: int) -> np.ndarray:
    """Gaussian noise for 4 canvases: each image adds a window of it, far cheaper than drawing afresh."""
    return np.random.default_rng(size).normal(0, NOISE, 4 * size * size * 3).astype(np.float32)


@lru_cache(maxsize=1)
def voc_palette() -> list[int]:
    """VOC's colour map (index 255 = (224, 224, 192)), flat RGB for `Image.putpalette`."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= (c & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of a mask's pixels, 0-based inclusive."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int]]:
    """A background colour and the range item colours are drawn from (contrasting with it)."""
    light = rng.random() < 0.3
    low, high = (170, 256) if light else (0, 90)
    bg = np.full(3, rng.integers(low, high)) if rng.random() < 0.3 else rng.integers(low, high, 3)
    return bg.astype(np.float32), ((0, 100) if light else (140, 256))


def render(items: np.ndarray, classes: np.ndarray, rng: np.random.Generator, size: int
           ) -> tuple[np.ndarray, list[_Object], np.ndarray]:
    """One mosaic of `items` (k x 28 x 28 uint8, pasted in order) of `classes`: the RGB image,
    its objects in paste order, and the void mask (soft edges outside every object)."""
    bg, item_range = _colours(rng)
    canvas = np.empty((size, size, 3), np.float32)
    canvas[:] = bg
    top = np.zeros((size, size), np.uint8)  # 1 + index of the visible object at each pixel
    soft = np.zeros((size, size), np.float32)
    visible, full, inside, placed = [0], [0], [0], []
    for item, cls in zip(items, classes):
        for _ in range(3):  # a few tries at a place that hides no earlier object almost entirely
            side = size * np.exp(rng.uniform(np.log(SIDE[0]), np.log(SIDE[1])))
            ratio = np.exp(rng.uniform(-0.25, 0.25))
            w, h = max(6, round(side * ratio)), max(6, round(side / ratio))
            x0, y0 = (int(rng.integers(-d // 4, size - d + d // 4 + 1)) for d in (w, h))
            alpha = np.asarray(Image.fromarray(item).resize((w, h), Image.BILINEAR), np.float32) / 255
            cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + w, size), min(y0 + h, size)
            a = alpha[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
            mask = a > MASK_ALPHA
            covered = np.bincount(top[cy0:cy1, cx0:cx1][mask], minlength=len(visible))
            left = np.array(visible) - covered
            if mask.sum() >= 4 and all(left[k] >= max(4, KEEP_VISIBLE * full[k]) for k in range(1, len(visible))):
                break
        else:
            continue
        colour = rng.integers(*item_range, 3).astype(np.float32)
        region = canvas[cy0:cy1, cx0:cx1]
        region += (colour - region) * a[..., None]
        top[cy0:cy1, cx0:cx1][mask] = len(visible)
        np.maximum(soft[cy0:cy1, cx0:cx1], a, out=soft[cy0:cy1, cx0:cx1])
        visible = list(left) + [int(mask.sum())]
        full.append(int((alpha > MASK_ALPHA).sum()))
        inside.append(int(mask.sum()))
        placed.append(int(cls))
    bank = _noise_bank(size)
    offset = int(rng.integers(0, bank.size - canvas.size))
    canvas += bank[offset:offset + canvas.size].reshape(canvas.shape)
    image = np.clip(canvas, 0, 255, out=canvas).astype(np.uint8)
    objects = []
    for k, cls in enumerate(placed, start=1):
        mask = top == k
        seen = int(visible[k])
        difficult = seen < (SMALL * size) ** 2 or seen < MOSTLY_HIDDEN * full[k]
        objects.append(_Object(cls, mask, _box(mask), seen, difficult, inside[k] < full[k]))
    return image, objects, (top == 0) & (soft > EDGE_ALPHA)


def rle_encode(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE: run lengths in column-major order, starting with a run of zeros."""
    flat = mask.T.ravel()
    bounds = np.concatenate([[0], np.flatnonzero(flat[1:] != flat[:-1]) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    return [0] + counts if flat[0] else counts


def _xml(image_id: str, size: int, objects: list[_Object]) -> str:
    parts = [f"<annotation>\n\t<folder>VOC2007</folder>\n\t<filename>{image_id}.jpg</filename>\n"
             f"\t<source>\n\t\t<database>Fashion-MNIST mosaic</database>\n\t</source>\n"
             f"\t<size>\n\t\t<width>{size}</width>\n\t\t<height>{size}</height>\n\t\t<depth>3</depth>\n\t</size>\n"
             f"\t<segmented>1</segmented>\n"]
    for obj in objects:
        x0, y0, x1, y1 = obj.box
        parts.append(f"\t<object>\n\t\t<name>{MOSAIC_CLASSES[obj.cls]}</name>\n\t\t<pose>Unspecified</pose>\n"
                     f"\t\t<truncated>{int(obj.truncated)}</truncated>\n"
                     f"\t\t<difficult>{int(obj.difficult)}</difficult>\n"
                     f"\t\t<bndbox>\n\t\t\t<xmin>{x0 + 1}</xmin>\n\t\t\t<ymin>{y0 + 1}</ymin>\n"
                     f"\t\t\t<xmax>{x1 + 1}</xmax>\n\t\t\t<ymax>{y1 + 1}</ymax>\n\t\t</bndbox>\n\t</object>\n")
    return "".join(parts) + "</annotation>\n"


def _png(index: np.ndarray, palette: list[int]) -> bytes:
    img = Image.fromarray(index.astype(np.uint8))
    img.putpalette(palette)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


@lru_cache(maxsize=2)
def _fashion_mnist(fmnist_dir: str, stem: str) -> tuple[np.ndarray, np.ndarray]:
    tree = FileTree(fmnist_dir) if Path(fmnist_dir).is_dir() else None
    files = [tree and idx_file(tree, f"{stem}-{kind}") for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")]
    if not all(files):
        raise DataError(f"Fashion-MNIST folder {fmnist_dir} lacks {stem}-images-idx3-ubyte[.gz] or "
                        f"{stem}-labels-idx1-ubyte[.gz]")
    images, labels = (read_idx(Path(fmnist_dir, f)) for f in files)
    return images, labels.astype(np.int64)


def check_params(num_train: int, num_test: int, size: int) -> None:
    for name, n in (("train", num_train), ("test", num_test)):
        if not 1 <= n <= MAX_IMAGES:
            raise ConfigError(f"mosaic: the number of {name} images must be in [1, {MAX_IMAGES}], got {n}")
    if not 32 <= size <= 1024:
        raise ConfigError(f"mosaic: size must be in [32, 1024] pixels, got {size}")


@dataclass
class _Drawn:
    """One image with its files, label vector and COCO entries (annotation ids assigned later)."""
    image_id: str
    files: dict[str, bytes]
    labels: np.ndarray
    coco_image: dict
    coco_annotations: list[dict]


@lru_cache(maxsize=4)
def _item_order(fmnist_dir: str, stem: str, seed: int, code: int) -> np.ndarray:
    """The seeded order in which images take the items of a Fashion-MNIST split, 4 slots each."""
    return np.random.default_rng([seed, code, 1]).permutation(len(_fashion_mnist(fmnist_dir, stem)[0]))


def _draw(image_set: str, i: int, size: int, seed: int, fmnist_dir: str) -> _Drawn:
    stem, code, first_id = SETS[image_set]
    pool, pool_labels = _fashion_mnist(fmnist_dir, stem)
    order = _item_order(fmnist_dir, stem, seed, code)
    rng = np.random.default_rng([seed, code, 0, i])
    n = int(rng.choice(len(ITEMS_P), p=ITEMS_P)) + 1
    chosen = order[(4 * i + np.arange(n)) % len(pool)]
    image, objects, void = render(pool[chosen], pool_labels[chosen], rng, size)
    image_id = f"{first_id + i:06d}"
    labels = np.full(len(MOSAIC_CLASSES), -1, np.int8)
    instance = np.zeros((size, size), np.uint8)
    annotations = []
    for k, obj in enumerate(objects, start=1):
        instance[obj.mask] = k
        labels[obj.cls] = max(labels[obj.cls], 0 if obj.difficult else 1)
        x0, y0, x1, y1 = obj.box
        annotations.append({"image_id": int(image_id), "category_id": obj.cls + 1,
                            "bbox": [x0, y0, x1 - x0 + 1, y1 - y0 + 1], "area": obj.area, "iscrowd": 0,
                            "segmentation": {"size": [size, size], "counts": rle_encode(obj.mask)},
                            "difficult": int(obj.difficult)})
    classmap = np.array([0] + [o.cls + 1 for o in objects], np.uint8)[instance]
    instance[void], classmap[void] = 255, 255
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=90)
    palette = voc_palette()
    files = {f"JPEGImages/{image_id}.jpg": buf.getvalue(),
             f"Annotations/{image_id}.xml": _xml(image_id, size, objects).encode(),
             f"SegmentationObject/{image_id}.png": _png(instance, palette),
             f"SegmentationClass/{image_id}.png": _png(classmap, palette)}
    coco_image = {"id": int(image_id), "file_name": f"{image_id}.jpg", "width": size, "height": size}
    return _Drawn(image_id, files, labels, coco_image, annotations)


def generate(output: str | Path, num_train: int = DEFAULT_TRAIN, num_test: int = DEFAULT_TEST, size: int = 96,
             seed: int = 0, fmnist_dir: str = FASHION_MNIST_DIR) -> dict:
    """Write the mosaic data set to the folder `output` (absent or empty); returns a summary.
    Every class must have a non-difficult instance in both sets: a DataError naming the class
    otherwise, raised before anything is written."""
    start = time.perf_counter()
    check_params(num_train, num_test, size)
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise ConfigError(f"mosaic: output {output} exists and is not an empty folder")
    files: dict[str, bytes] = {}
    summary = {"root": str(output), "size": size, "seed": seed, "classes": list(MOSAIC_CLASSES),
               "images": {}, "objects": {}, "difficult": {}}
    for image_set, count in (("trainval", num_train), ("test", num_test)):
        drawn = [_draw(image_set, i, size, seed, fmnist_dir) for i in range(count)]
        labels = np.stack([d.labels for d in drawn])
        for c, name in enumerate(MOSAIC_CLASSES):
            if not (labels[:, c] == 1).any():
                raise DataError(f"mosaic: class {name} has no (non-difficult) instance in the {count} {image_set} "
                                f"images of seed {seed}; generate more images")
        annotations = [dict(a, id=k) for k, a in enumerate((a for d in drawn for a in d.coco_annotations), start=1)]
        coco = {"info": {"description": f"Fashion-MNIST mosaic {image_set}", "version": str(GENERATOR_VERSION)},
                "licenses": [], "images": [d.coco_image for d in drawn], "annotations": annotations,
                "categories": [{"id": c + 1, "name": name, "supercategory": "fashion"}
                               for c, name in enumerate(MOSAIC_CLASSES)]}
        for d in drawn:
            files.update(d.files)
        ids = [d.image_id for d in drawn]
        listing = "".join(f"{i}\n" for i in ids).encode()
        files[f"ImageSets/Main/{image_set}.txt"] = files[f"ImageSets/Segmentation/{image_set}.txt"] = listing
        for c, name in enumerate(MOSAIC_CLASSES):
            files[f"ImageSets/Main/{name}_{image_set}.txt"] = "".join(
                f"{i} {v:2d}\n" for i, v in zip(ids, labels[:, c].tolist())).encode()
        files[f"annotations/instances_{image_set}.json"] = json.dumps(coco, separators=(",", ":")).encode()
        summary["images"][image_set] = count
        summary["objects"][image_set] = len(annotations)
        summary["difficult"][image_set] = sum(a["difficult"] for a in annotations)
    for folder in {rel.rpartition("/")[0] for rel in files}:
        (output / folder).mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        (output / rel).write_bytes(data)
    summary["seconds"] = round(time.perf_counter() - start, 2)
    return summary


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ssl_lib.data.mosaic", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", required=True, help="folder to write (absent or empty)")
    p.add_argument("--train", type=int, default=DEFAULT_TRAIN, help=f"trainval images (default {DEFAULT_TRAIN})")
    p.add_argument("--test", type=int, default=DEFAULT_TEST, help=f"test images (default {DEFAULT_TEST})")
    p.add_argument("--size", type=int, default=96, help="canvas side in pixels (default 96)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fmnist-dir", default=FASHION_MNIST_DIR, help="Fashion-MNIST IDX files")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_code(lambda: print(json.dumps(generate(args.output, args.train, args.test, args.size, args.seed,
                                                       args.fmnist_dir), indent=2)))


if __name__ == "__main__":
    sys.exit(main())
