"""The Fashion-MNIST mosaic generator: VOC2007 layout, annotations / ImageSets / segmentation PNGs /
COCO JSON agreeing with each other, determinism by seed, and a class without positives refused."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ssl_lib.data.mosaic import MOSAIC_CLASSES, generate, main, rle_encode, voc_palette
from ssl_lib.data.voc import parse_annotation
from ssl_lib.errors import ConfigError, DataError

SETS = {"trainval": 30, "test": 30}


@pytest.fixture(scope="module")
def mosaic(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mosaic") / "voc"
    generate(root, SETS["trainval"], SETS["test"], size=64, seed=0)
    return root


def ids_of(root: Path, image_set: str) -> list[str]:
    return (root / "ImageSets/Main" / f"{image_set}.txt").read_text().split()


def class_labels(root: Path, image_set: str) -> dict[str, dict[str, int]]:
    """{class: {id: 1 / -1 / 0}} from ImageSets/Main/<class>_<set>.txt."""
    out = {}
    for cls in MOSAIC_CLASSES:
        lines = (root / "ImageSets/Main" / f"{cls}_{image_set}.txt").read_text().splitlines()
        out[cls] = {line.split()[0]: int(line.split()[1]) for line in lines}
    return out


def rle_decode(rle: dict) -> np.ndarray:
    h, w = rle["size"]
    flat, pos = np.zeros(h * w, bool), 0
    for k, run in enumerate(rle["counts"]):
        flat[pos:pos + run] = k % 2 == 1
        pos += run
    assert pos == h * w
    return flat.reshape(w, h).T


def test_rle_runs_are_column_major_and_start_with_background():
    mask = np.zeros((3, 4), bool)
    mask[0, 0] = mask[1, 0] = mask[2, 3] = True
    assert rle_encode(mask) == [0, 2, 9, 1]
    assert rle_encode(~mask) == [2, 9, 1]
    for m in (mask, ~mask, np.zeros((3, 4), bool)):
        assert (rle_decode({"size": [3, 4], "counts": rle_encode(m)}) == m).all()


def test_the_voc2007_layout_is_written(mosaic):
    for image_set, count in SETS.items():
        ids = ids_of(mosaic, image_set)
        assert len(ids) == count and (mosaic / "ImageSets/Segmentation" / f"{image_set}.txt").read_text().split() == ids
        for i in ids:
            for rel in (f"JPEGImages/{i}.jpg", f"Annotations/{i}.xml", f"SegmentationObject/{i}.png",
                        f"SegmentationClass/{i}.png"):
                assert (mosaic / rel).is_file(), rel
        assert (mosaic / "annotations" / f"instances_{image_set}.json").is_file()
    assert not set(ids_of(mosaic, "trainval")) & set(ids_of(mosaic, "test"))
    with Image.open(mosaic / "JPEGImages" / f"{ids_of(mosaic, 'test')[0]}.jpg") as img:
        assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (64, 64))


@pytest.mark.parametrize("image_set", list(SETS))
def test_imagesets_agree_with_the_annotations(mosaic, image_set):
    labels = class_labels(mosaic, image_set)
    seen_difficult = 0
    for i in ids_of(mosaic, image_set):
        ann = parse_annotation(mosaic / "Annotations" / f"{i}.xml")
        assert (ann.filename, ann.width, ann.height, ann.segmented) == (f"{i}.jpg", 64, 64, True)
        assert 1 <= len(ann.objects) <= 4
        for cls in MOSAIC_CLASSES:
            marks = [o.difficult for o in ann.objects if o.name == cls]
            assert labels[cls][i] == ((1 if not all(marks) else 0) if marks else -1), (i, cls)
        seen_difficult += sum(o.difficult for o in ann.objects)
    assert seen_difficult > 0
    assert all(1 in per_image.values() for per_image in labels.values())  # every class has positives


@pytest.mark.parametrize("image_set", list(SETS))
def test_segmentation_pngs_hold_each_object_inside_its_box(mosaic, image_set):
    for i in ids_of(mosaic, image_set):
        objects = parse_annotation(mosaic / "Annotations" / f"{i}.xml").objects
        with Image.open(mosaic / "SegmentationObject" / f"{i}.png") as inst_png, \
                Image.open(mosaic / "SegmentationClass" / f"{i}.png") as cls_png:
            assert inst_png.mode == cls_png.mode == "P" and inst_png.getpalette()[:9] == voc_palette()[:9]
            inst, classes = np.asarray(inst_png), np.asarray(cls_png)
        assert set(np.unique(inst)) <= set(range(len(objects) + 1)) | {255}
        assert ((inst == 255) == (classes == 255)).all() and ((inst == 0) == (classes == 0)).all()
        for k, obj in enumerate(objects, start=1):
            ys, xs = np.nonzero(inst == k)
            assert len(ys), (i, k)
            x0, y0, x1, y1 = obj.bbox  # VOC: 1-based, inclusive, tight around the visible pixels
            assert (xs.min() + 1, ys.min() + 1, xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)
            assert (classes[ys, xs] == MOSAIC_CLASSES.index(obj.name) + 1).all()


@pytest.mark.parametrize("image_set", list(SETS))
def test_coco_json_holds_the_same_objects_as_the_xml(mosaic, image_set):
    coco = json.loads((mosaic / "annotations" / f"instances_{image_set}.json").read_text())
    assert [c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"])] == list(MOSAIC_CLASSES)
    assert [img["file_name"] for img in coco["images"]] == [f"{i}.jpg" for i in ids_of(mosaic, image_set)]
    assert len({a["id"] for a in coco["annotations"]}) == len(coco["annotations"])
    by_image = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    for img in coco["images"]:
        objects = parse_annotation(mosaic / "Annotations" / img["file_name"].replace(".jpg", ".xml")).objects
        anns = by_image.get(img["id"], [])
        assert len(anns) == len(objects) and (img["width"], img["height"]) == (64, 64)
        with Image.open(mosaic / "SegmentationObject" / img["file_name"].replace(".jpg", ".png")) as png:
            inst = np.asarray(png)
        for k, (ann, obj) in enumerate(zip(anns, objects), start=1):
            x0, y0, x1, y1 = obj.bbox
            assert ann["bbox"] == [x0 - 1, y0 - 1, x1 - x0 + 1, y1 - y0 + 1]
            assert coco["categories"][ann["category_id"] - 1]["name"] == obj.name
            assert (ann["iscrowd"], ann["difficult"]) == (0, int(obj.difficult))
            mask = rle_decode(ann["segmentation"])
            assert (mask == (inst == k)).all() and ann["area"] == int(mask.sum())


def test_pycocotools_loads_the_json_when_installed(mosaic):
    coco_api = pytest.importorskip("pycocotools.coco")
    coco = coco_api.COCO(str(mosaic / "annotations" / "instances_test.json"))
    ann = coco.loadAnns(coco.getAnnIds())[0]
    assert coco.annToMask(ann).sum() == ann["area"]


def test_same_seed_gives_identical_files_and_a_prefix_of_a_larger_set(mosaic, tmp_path):
    generate(tmp_path / "again", 40, SETS["test"], size=64, seed=0)
    generate(tmp_path / "other", SETS["trainval"], SETS["test"], size=64, seed=1)
    for rel in ("ImageSets/Main/test.txt", "annotations/instances_test.json", "ImageSets/Main/bag_test.txt"):
        assert (tmp_path / "again" / rel).read_bytes() == (mosaic / rel).read_bytes()
    for i in ids_of(mosaic, "trainval") + ids_of(mosaic, "test"):
        for rel in (f"JPEGImages/{i}.jpg", f"Annotations/{i}.xml", f"SegmentationObject/{i}.png"):
            assert (tmp_path / "again" / rel).read_bytes() == (mosaic / rel).read_bytes()
    assert len(ids_of(tmp_path / "again", "trainval")) == 40
    first = f"JPEGImages/{ids_of(mosaic, 'test')[0]}.jpg"
    assert (tmp_path / "other" / first).read_bytes() != (mosaic / first).read_bytes()


def test_a_class_without_positives_is_an_error_naming_it_and_nothing_is_written(tmp_path):
    with pytest.raises(DataError, match="class bag has no .*instance in the 10 trainval images of seed 0"):
        generate(tmp_path / "small", 10, 30, size=64, seed=0)
    assert not (tmp_path / "small").exists()


def test_bad_parameters_and_a_used_output_folder_are_config_errors(mosaic, tmp_path):
    with pytest.raises(ConfigError, match="size must be in"):
        generate(tmp_path / "a", 30, 30, size=16)
    with pytest.raises(ConfigError, match="number of test images"):
        generate(tmp_path / "a", 30, 0)
    with pytest.raises(ConfigError, match="exists and is not an empty folder"):
        generate(mosaic, 30, 30, size=64)


def test_cli_prints_a_summary(tmp_path, capsys):
    assert main(["--output", str(tmp_path / "m"), "--train", "30", "--test", "30", "--size", "64"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == SETS and summary["classes"] == list(MOSAIC_CLASSES)
    assert 0 < summary["difficult"]["test"] < summary["objects"]["test"]
