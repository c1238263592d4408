"""`prep --task detseg`: the VOC, COCO and Cityscapes readers on hand-made fixtures (difficult boxes,
crowd annotations, the ignore label 255), the checks made before anything is written, the mosaic
default in all three layouts, reruns, and the artifact read by mmdet's and mmseg's own datasets."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ssl_lib import storage
from ssl_lib.data import detseg
from ssl_lib.data.mosaic import MOSAIC_CLASSES, rle_encode
from ssl_lib.data.voc import parse_annotation
from ssl_lib.errors import DataError
from ssl_lib.stages.prep import prep

# About the fewest 64 px images whose trainval and test sets both hold every class (12 / 8 do not, seeds 0-5).
MOSAIC = dict(train_limit=16, test_limit=12, mosaic_size=64, mosaic_seed=1)


def build(source, out, **kwargs) -> dict:
    return prep(str(source), str(out), task="detseg", **kwargs)


def manifest_of(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


def assert_nothing_published(out: Path) -> None:
    assert not out.exists()
    assert not [p.name for p in out.parent.iterdir()  # no staging left (the output's lock may stay)
                if p.name.startswith(f".{out.name}.") and p.name != f".{out.name}.lock"]


# --- fixtures ------------------------------------------------------------------------------------

def write_image(path: Path, size=(16, 16), fmt="JPEG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 30)).save(path, format=fmt)


def voc_xml(image_id: str, objects: list[tuple[str, tuple, int]]) -> str:
    body = "".join(f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
                   f"<difficult>{difficult}</difficult><bndbox><xmin>{box[0]}</xmin><ymin>{box[1]}</ymin>"
                   f"<xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox></object>"
                   for name, box, difficult in objects)
    return (f"<annotation><folder>VOC2007</folder><filename>{image_id}.jpg</filename>"
            f"<size><width>16</width><height>16</height><depth>3</depth></size>{body}</annotation>")


def make_voc(root: Path, sets: dict[str, dict[str, list]]) -> Path:
    """VOCdevkit/VOC2007 with {image set: {id: objects}}: JPEGs, XML and ImageSets/Main lists."""
    voc = root / "VOCdevkit" / "VOC2007"
    (voc / "Annotations").mkdir(parents=True)
    (voc / "ImageSets/Main").mkdir(parents=True)
    for image_set, images in sets.items():
        for image_id, objects in images.items():
            write_image(voc / "JPEGImages" / f"{image_id}.jpg")
            (voc / "Annotations" / f"{image_id}.xml").write_text(voc_xml(image_id, objects))
        (voc / "ImageSets/Main" / f"{image_set}.txt").write_text("".join(f"{i}\n" for i in images))
    return root


def voc_sets(test_class="dog", objects=True) -> dict:
    def objs(*items):
        return list(items) if objects else []
    return {"trainval": {"000001": objs(("cat", (2, 2, 9, 9), 0), ("dog", (5, 5, 14, 14), 1)),
                         "000002": objs(("dog", (1, 1, 8, 12), 0))},
            "test": {"000003": objs(("cat", (3, 3, 10, 10), 0), (test_class, (4, 4, 12, 15), 1))}}


CATEGORIES = [{"id": 1, "name": "person", "supercategory": "person"},
              {"id": 2, "name": "car", "supercategory": "vehicle"}]


def make_coco(root: Path, val_categories=CATEGORIES, masks=True) -> Path:
    """coco/annotations/instances_{train,val}2017.json: a polygon person and a crowd of cars (RLE)."""
    crowd = np.zeros((16, 16), bool)
    crowd[8:, :] = True
    for split, categories in (("train2017", CATEGORIES), ("val2017", val_categories)):
        images = [{"id": k, "file_name": f"{k:012d}.jpg", "width": 16, "height": 16} for k in (1, 2)]
        for img in images:
            write_image(root / "coco" / split / img["file_name"])
        annotations = [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 6, 6], "area": 36, "iscrowd": 0,
             "segmentation": [[2, 2, 8, 2, 8, 8, 2, 8]]},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [0, 8, 16, 8], "area": 128, "iscrowd": 1,
             "segmentation": {"size": [16, 16], "counts": rle_encode(crowd)}}]
        if not masks:
            for ann in annotations:
                del ann["segmentation"]
        path = root / "coco" / "annotations" / f"instances_{split}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return root


STEM = "aachen_000000_000019"


def make_cityscapes(root: Path, stray_value: int | None = None) -> Path:
    """One image per split; its train-id mask has a road half, a car half and a 255 (ignore) band."""
    for split in ("train", "val"):
        write_image(root / "cityscapes/leftImg8bit" / split / "aachen" / f"{STEM}_leftImg8bit.png", (16, 8), "PNG")
        mask = np.zeros((8, 16), np.uint8)
        mask[:, 8:] = 13
        mask[:2] = 255
        if stray_value is not None:
            mask[5, 5] = stray_value
        gt = root / "cityscapes/gtFine" / split / "aachen"
        gt.mkdir(parents=True)
        Image.fromarray(mask).save(gt / f"{STEM}_gtFine_labelTrainIds.png")
        Image.fromarray(mask).save(gt / f"{STEM}_gtFine_labelIds.png")  # the raw ids: not part of the artifact
    return root


@pytest.fixture(scope="module")
def mosaic_artifact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("detseg") / "mosaic"
    build("fashion-mnist-mosaic", out, **MOSAIC)
    return out


# --- VOC detection ---------------------------------------------------------------------------------

def test_voc_difficult_boxes_are_kept_with_their_flag(tmp_path):
    out = tmp_path / "out"
    metrics = build(make_voc(tmp_path / "src", voc_sets()), out)
    assert metrics["layouts"] == ["voc_det"]
    manifest = manifest_of(out)
    layout = manifest["layouts"]["voc_det"]
    assert layout["classes"] == ["cat", "dog"]
    assert layout["train"] == [{"ann_file": "VOCdevkit/VOC2007/ImageSets/Main/trainval.txt",
                                "data_root": "VOCdevkit/VOC2007", "num_images": 2}]
    assert manifest["counts"]["voc_det"]["train"] == {"images": 2, "instances": 3, "difficult": 1}
    objects = parse_annotation(out / "VOCdevkit/VOC2007/Annotations/000001.xml").objects
    assert [(o.name, o.difficult) for o in objects] == [("cat", False), ("dog", True)]
    assert (out / storage.SUCCESS).exists()


def test_voc_class_lists_that_differ_between_train_and_test_are_refused(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"class lists differ between train .*\['cat', 'dog'\].* and test .*"
                                        r"\['bird', 'cat'\]"):
        build(make_voc(tmp_path / "src", voc_sets(test_class="bird")), out)
    assert_nothing_published(out)


def test_voc_without_boxes_is_refused(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(DataError, match="no boxes in the train split"):
        build(make_voc(tmp_path / "src", voc_sets(objects=False)), out)
    assert_nothing_published(out)


def test_a_missing_image_is_named_and_nothing_is_published(tmp_path):
    src = make_voc(tmp_path / "src", voc_sets())
    (src / "VOCdevkit/VOC2007/JPEGImages/000003.jpg").unlink()
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"image .*VOCdevkit/VOC2007/JPEGImages/000003\.jpg is missing "
                                        r"\(listed in .*ImageSets/Main/test\.txt\)"):
        build(src, out)
    assert_nothing_published(out)


def test_voc_limits_keep_the_first_images_of_each_split(tmp_path):
    out = tmp_path / "out"
    build(make_voc(tmp_path / "src", voc_sets()), out, train_limit=1)
    assert (out / "VOCdevkit/VOC2007/ImageSets/Main/trainval.txt").read_text() == "000001\n"
    assert not (out / "VOCdevkit/VOC2007/JPEGImages/000002.jpg").exists()


def test_voc_from_s3_to_s3(tmp_path, s3_server):
    src = make_voc(tmp_path / "src", voc_sets())
    for path in src.rglob("*"):
        if path.is_file():
            storage.upload(path, f"s3://{s3_server}/detseg-src/{path.relative_to(src)}")
    out = f"s3://{s3_server}/detseg-out"
    build(f"s3://{s3_server}/detseg-src", out)
    assert storage.is_complete(out)
    assert detseg.load_manifest(out)["layouts"]["voc_det"]["classes"] == ["cat", "dog"]
    assert storage.exists(f"{out}/VOCdevkit/VOC2007/Annotations/000003.xml")


# --- VOC segmentation ------------------------------------------------------------------------------

def make_voc_seg(root: Path, value: int) -> Path:
    """VOC2012 train / val, one image each, its mask holding `value` beside background and void."""
    voc = root / "VOC2012"
    (voc / "ImageSets/Segmentation").mkdir(parents=True)
    for split, image_id in (("train", "2007_000032"), ("val", "2007_000033")):
        write_image(voc / "JPEGImages" / f"{image_id}.jpg")
        mask = np.zeros((16, 16), np.uint8)
        mask[4:10, 4:10], mask[3] = value, 255
        (voc / "SegmentationClass").mkdir(exist_ok=True)
        Image.fromarray(mask).save(voc / "SegmentationClass" / f"{image_id}.png")
        (voc / "ImageSets/Segmentation" / f"{split}.txt").write_text(f"{image_id}\n")
    return root


def test_voc_segmentation_train_val_with_voc_classes(tmp_path):
    out = tmp_path / "out"
    build(make_voc_seg(tmp_path / "src", 20), out)
    layout = manifest_of(out)["layouts"]["voc_seg"]
    assert len(layout["classes"]) == 21 and layout["classes"][0] == "background"
    assert layout["train"] == {"ann_file": "VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt",
                               "img_prefix": "VOCdevkit/VOC2012/JPEGImages",
                               "seg_prefix": "VOCdevkit/VOC2012/SegmentationClass", "num_images": 1}
    assert (out / layout["test"]["seg_prefix"] / "2007_000033.png").exists()


def test_voc_mask_value_outside_the_classes_is_named(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"mask .*SegmentationClass/2007_000032\.png has value 21, outside the 21"):
        build(make_voc_seg(tmp_path / "src", 21), out)
    assert_nothing_published(out)


def test_voc_segmentation_masks_without_an_object_pixel_are_refused(tmp_path):
    with pytest.raises(DataError, match="no masks in VOC2012 train.* no pixel of any mask is labelled"):
        build(make_voc_seg(tmp_path / "src", 0), tmp_path / "out")
    assert_nothing_published(tmp_path / "out")


def test_voc_segmentation_without_masks_is_refused(tmp_path):
    src = make_voc_seg(tmp_path / "src", 5)
    for mask in (src / "VOC2012/SegmentationClass").iterdir():
        mask.unlink()
    (src / "VOC2012/SegmentationClass").rmdir()
    with pytest.raises(DataError, match="no usable pair of image sets with their masks"):
        build(src, tmp_path / "out")
    assert_nothing_published(tmp_path / "out")


# --- COCO ------------------------------------------------------------------------------------------

def test_coco_crowd_annotations_stay_crowd(tmp_path):
    out = tmp_path / "out"
    build(make_coco(tmp_path / "src"), out)
    manifest = manifest_of(out)
    layout = manifest["layouts"]["coco"]
    assert layout["classes"] == ["person", "car"]
    assert layout["train"] == {"ann_file": "coco/annotations/instances_train2017.json", "img_prefix": "coco/train2017",
                               "num_images": 2}
    assert manifest["counts"]["coco"]["train"] == {"images": 2, "instances": 1, "crowd": 1, "masks": 2}
    annotations = json.loads((out / layout["train"]["ann_file"]).read_text())["annotations"]
    assert [a["iscrowd"] for a in annotations] == [0, 1]

    from mmdet.datasets import CocoDataset

    dataset = CocoDataset(data_root=str(out), ann_file=layout["train"]["ann_file"],
                          data_prefix=dict(img=layout["train"]["img_prefix"] + "/"),
                          metainfo=dict(classes=tuple(layout["classes"])), pipeline=[])
    flags = {i["bbox_label"]: i["ignore_flag"] for k in range(len(dataset))
             for i in dataset.get_data_info(k)["instances"]}
    assert flags == {0: 0, 1: 1}  # the crowd of cars is ignored in training, as COCO means it


def test_coco_category_lists_that_differ_are_refused(tmp_path):
    other = [CATEGORIES[0], {"id": 2, "name": "truck", "supercategory": "vehicle"}]
    with pytest.raises(DataError, match=r"class lists differ between train .*'car'.* and test .*'truck'"):
        build(make_coco(tmp_path / "src", val_categories=other), tmp_path / "out")
    assert_nothing_published(tmp_path / "out")


def test_coco_without_masks_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"no masks in .*instances_train2017\.json"):
        build(make_coco(tmp_path / "src", masks=False), tmp_path / "out")
    assert_nothing_published(tmp_path / "out")


# --- Cityscapes ------------------------------------------------------------------------------------

def test_cityscapes_ignore_label_255_is_accepted(tmp_path):
    out = tmp_path / "out"
    build(make_cityscapes(tmp_path / "src"), out)
    layout = manifest_of(out)["layouts"]["cityscapes"]
    assert len(layout["classes"]) == 19
    assert layout["test"] == {"img_prefix": "cityscapes/leftImg8bit/val", "seg_prefix": "cityscapes/gtFine/val",
                              "num_images": 1}
    assert sorted(p.name for p in (out / "cityscapes/gtFine/train/aachen").iterdir()) == \
        [f"{STEM}_gtFine_labelTrainIds.png"]

    from mmseg.datasets import CityscapesDataset

    dataset = CityscapesDataset(data_root=str(out), data_prefix=dict(img_path=layout["train"]["img_prefix"],
                                                                     seg_map_path=layout["train"]["seg_prefix"]),
                                pipeline=[])
    assert len(dataset) == 1 and Path(dataset.get_data_info(0)["seg_map_path"]).exists()


def test_cityscapes_value_254_is_refused_naming_the_mask(tmp_path):
    with pytest.raises(DataError, match=rf"mask .*gtFine/train/aachen/{STEM}_gtFine_labelTrainIds\.png has value "
                                        r"254, outside the 19 classes"):
        build(make_cityscapes(tmp_path / "src", stray_value=254), tmp_path / "out")
    assert_nothing_published(tmp_path / "out")


# --- the mosaic default ----------------------------------------------------------------------------

def test_the_mosaic_gives_all_three_layouts_whose_paths_exist(mosaic_artifact):
    manifest = manifest_of(mosaic_artifact)
    layouts = manifest["layouts"]
    assert manifest["format"] == "ssl-detseg-v1" and manifest["name"] == "fashion-mnist-mosaic"
    assert sorted(layouts) == ["coco", "voc_det", "voc_seg"]
    assert layouts["voc_det"]["classes"] == layouts["coco"]["classes"] == list(MOSAIC_CLASSES)
    assert layouts["voc_seg"]["classes"] == ["background", *MOSAIC_CLASSES]
    entries = [*layouts["voc_det"]["train"], *layouts["voc_det"]["test"], *(layouts[name][split]
               for name in ("coco", "voc_seg") for split in ("train", "test"))]
    for entry in entries:
        for key in ("ann_file", "data_root", "img_prefix", "seg_prefix"):
            if key in entry:
                assert (mosaic_artifact / entry[key]).exists(), (key, entry[key])
    assert [layouts["coco"][s]["num_images"] for s in ("train", "test")] == [16, 12]
    assert layouts["coco"]["train"]["img_prefix"] == "VOCdevkit/VOC2007/JPEGImages"


def test_a_rerun_with_the_same_parameters_reuses_the_output(mosaic_artifact, monkeypatch, capsys):
    first = json.loads((mosaic_artifact / "manifest.json").read_text())

    def must_not_generate(*args, **kwargs):
        raise AssertionError("the rerun generated the mosaic again")

    monkeypatch.setattr(detseg.mosaic, "generate", must_not_generate)
    metrics = build("fashion-mnist-mosaic", mosaic_artifact, **MOSAIC)
    assert metrics["counts"] == first["counts"] and metrics["layouts"] == ["coco", "voc_det", "voc_seg"]
    assert "already holds this dataset" in capsys.readouterr().err


def test_mmdet_and_mmseg_read_the_mosaic_layouts(mosaic_artifact):
    from mmdet.datasets import CocoDataset, VOCDataset
    from mmseg.datasets import BaseSegDataset

    root, manifest = mosaic_artifact, manifest_of(mosaic_artifact)
    layouts, counts = manifest["layouts"], manifest["counts"]

    def instances(dataset) -> int:
        return sum(len(dataset.get_data_info(k)["instances"]) for k in range(len(dataset)))

    for split in ("train", "test"):
        det = layouts["voc_det"]
        entry, = det[split]
        voc = VOCDataset(data_root=str(root / entry["data_root"]),
                         ann_file=entry["ann_file"][len(entry["data_root"]) + 1:],
                         data_prefix=dict(sub_data_root=""), metainfo=dict(classes=tuple(det["classes"])),
                         test_mode=split == "test", pipeline=[])
        assert len(voc) == entry["num_images"] == counts["voc_det"][split]["images"]
        assert instances(voc) == counts["voc_det"][split]["instances"]
        ignored = sum(i["ignore_flag"] for k in range(len(voc)) for i in voc.get_data_info(k)["instances"])
        assert ignored == counts["voc_det"][split]["difficult"] > 0
        assert Path(voc.get_data_info(0)["img_path"]).exists() and voc.metainfo["dataset_type"] == "VOC2007"
        voc_style = VOCDataset(data_root=str(root), ann_file=entry["ann_file"],
                               data_prefix=dict(sub_data_root=entry["data_root"] + "/"),
                               metainfo=dict(classes=tuple(det["classes"])), test_mode=split == "test", pipeline=[])
        assert [voc_style.get_data_info(k) for k in range(len(voc))] == [voc.get_data_info(k) for k in range(len(voc))]

        coco_layout = layouts["coco"]
        coco = CocoDataset(data_root=str(root), ann_file=coco_layout[split]["ann_file"],
                           data_prefix=dict(img=coco_layout[split]["img_prefix"] + "/"),
                           metainfo=dict(classes=tuple(coco_layout["classes"])), test_mode=split == "test", pipeline=[])
        assert len(coco) == coco_layout[split]["num_images"]
        assert instances(coco) == counts["coco"][split]["instances"] == counts["voc_det"][split]["instances"]
        assert Path(coco.get_data_info(0)["img_path"]).exists()

        seg_layout = layouts["voc_seg"]
        seg = BaseSegDataset(data_root=str(root), ann_file=seg_layout[split]["ann_file"],
                             data_prefix=dict(img_path=seg_layout[split]["img_prefix"],
                                              seg_map_path=seg_layout[split]["seg_prefix"]),
                             img_suffix=".jpg", seg_map_suffix=".png", reduce_zero_label=False,
                             metainfo=dict(classes=tuple(seg_layout["classes"])), pipeline=[])
        assert len(seg) == seg_layout[split]["num_images"] == counts["voc_seg"][split]["images"]
        assert all(Path(seg.get_data_info(k)[key]).exists()
                   for k in range(len(seg)) for key in ("img_path", "seg_map_path"))
