"""The VOC2007 reader: label vectors from ImageSets/Main (difficult -> 0), layout detection, the
multi-label dataset artifact read back, and bad input named before anything is written."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ssl_lib import storage
from ssl_lib.data.datasets import SingleViewDataset
from ssl_lib.data.shards import ParquetDataset
from ssl_lib.data.sources import source_from_uri
from ssl_lib.data.voc import VOC, VOC_CLASSES, parse_annotation
from ssl_lib.errors import DataError
from ssl_lib.stages.prep import prep

# image id -> (image set, [(class, difficult)]): cat/dog/owl, each with positives in both sets
OBJECTS = {
    "000001": ("trainval", [("cat", 0), ("dog", 1)]),
    "000002": ("trainval", [("dog", 0)]),
    "000003": ("trainval", [("owl", 0), ("cat", 0)]),
    "000004": ("trainval", [("owl", 1), ("dog", 0)]),
    "000005": ("test", [("cat", 0), ("owl", 0)]),
    "000006": ("test", [("dog", 0), ("owl", 1)]),
}
TRAIN = {"000001": [1, 0, -1], "000002": [-1, 1, -1], "000003": [1, -1, 1], "000004": [-1, 1, 0]}
TEST = {"000005": [1, -1, 1], "000006": [-1, 1, 0]}


def xml(image_id: str, objects: list[tuple[str, int]]) -> str:
    body = "".join(f"<object><name>{name}</name><pose>Left</pose><truncated>0</truncated>"
                   f"<difficult>{difficult}</difficult><bndbox><xmin>{2 + k}</xmin><ymin>3</ymin>"
                   f"<xmax>{10 + k}</xmax><ymax>12</ymax></bndbox></object>"
                   for k, (name, difficult) in enumerate(objects))
    return (f"<annotation><folder>VOC2007</folder><filename>{image_id}.jpg</filename>"
            f"<size><width>16</width><height>16</height><depth>3</depth></size>{body}</annotation>")


def make_voc(root: Path, objects: dict = OBJECTS) -> Path:
    """A VOC2007 folder whose ImageSets/Main labels follow from `objects` as VOC's do."""
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    classes = sorted({name for _, objs in objects.values() for name, _ in objs})
    for k, (image_id, (_, objs)) in enumerate(objects.items()):
        buf = io.BytesIO()
        Image.new("RGB", (16, 16), (40 * k, 200 - 30 * k, 90)).save(buf, format="JPEG")
        (root / "JPEGImages" / f"{image_id}.jpg").write_bytes(buf.getvalue())
        (root / "Annotations" / f"{image_id}.xml").write_text(xml(image_id, objs))
    for image_set in ("trainval", "test"):
        ids = [i for i, (s, _) in objects.items() if s == image_set]
        (root / "ImageSets/Main" / f"{image_set}.txt").write_text("".join(f"{i}\n" for i in ids))
        for cls in classes:
            lines = []
            for i in ids:
                marks = [d for name, d in objects[i][1] if name == cls]
                lines.append(f"{i} {(1 if 0 in marks else 0) if marks else -1:2d}\n")
            (root / "ImageSets/Main" / f"{cls}_{image_set}.txt").write_text("".join(lines))
    return root


@pytest.fixture
def voc(tmp_path) -> Path:
    return make_voc(tmp_path / "VOCdevkit" / "VOC2007")


def test_label_vectors_follow_imagesets_with_difficult_only_as_zero(voc):
    source = source_from_uri(str(voc))
    assert isinstance(source, VOC) and source.multi_label and source.classes == ["cat", "dog", "owl"]
    samples = list(source)
    assert [(name, split) for name, _, _, split in samples] == (
        [(f"JPEGImages/{i}.jpg", "train") for i in TRAIN] + [(f"JPEGImages/{i}.jpg", "test") for i in TEST])
    assert {name[11:17]: label.tolist() for name, _, label, _ in samples} == {**TRAIN, **TEST}
    assert all(label.dtype == np.int8 for _, _, label, _ in samples)
    assert samples[0][1] == (voc / "JPEGImages" / "000001.jpg").read_bytes()


@pytest.mark.parametrize("given", ["VOCdevkit", "VOCdevkit/VOC2007"])
def test_layout_is_found_in_the_folder_its_voc2007_or_vocdevkit(voc, given):
    root = voc.parents[1] / given
    assert isinstance(source_from_uri(str(root)), VOC)


def test_prep_writes_label_vectors_read_back_as_int8_tensors(voc, tmp_path):
    out = tmp_path / "ds"
    metrics = prep(str(voc.parent), str(out), shard_size=3)
    assert (metrics["num_train"], metrics["num_test"], metrics["num_classes"]) == (4, 2, 3)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["multi_label"] is True and manifest["classes"] == ["cat", "dog", "owl"]
    train = ParquetDataset(str(out), "train", in_memory=False)
    assert train.labels.dtype == np.int8 and train.labels.tolist() == list(TRAIN.values())
    assert ParquetDataset(str(out), "train", in_memory=True).labels.tolist() == list(TRAIN.values())
    dataset = SingleViewDataset(dict(type="ParquetShards", root=str(out), split="test"), [dict(type="ToTensor")])
    item = dataset[1]
    assert item["label"].dtype == torch.int8 and item["label"].tolist() == TEST["000006"]
    batch = next(iter(DataLoader(dataset, batch_size=2)))
    assert batch["img"].shape == (2, 3, 16, 16) and batch["label"].shape == (2, 3)
    assert batch["label"].tolist() == list(TEST.values())


def test_the_twenty_voc_classes_keep_voc_order(tmp_path):
    objects = {"000001": ("trainval", [(c, 0) for c in reversed(VOC_CLASSES)]),
               "000002": ("test", [(c, 0) for c in VOC_CLASSES])}
    source = source_from_uri(str(make_voc(tmp_path / "voc", objects)))
    assert source.classes == list(VOC_CLASSES) and source.classes[0] == "aeroplane"
    assert [label.tolist() for _, _, label, _ in source] == [[1] * 20] * 2


def test_annotation_gives_boxes_difficult_and_pose(voc):
    ann = parse_annotation(voc / "Annotations" / "000001.xml")
    assert (ann.filename, ann.width, ann.height, ann.depth) == ("000001.jpg", 16, 16, 3)
    assert [(o.name, o.bbox, o.difficult, o.pose) for o in ann.objects] == [
        ("cat", (2, 3, 10, 12), False, "Left"), ("dog", (3, 3, 11, 12), True, "Left")]


def expect_error(voc: Path, out: Path, match: str) -> None:
    with pytest.raises(DataError, match=match):
        prep(str(voc), str(out))
    assert not out.exists()  # nothing written, not even a journal


def test_a_label_file_naming_a_missing_image_is_an_error_naming_it(voc, tmp_path):
    (voc / "JPEGImages" / "000003.jpg").unlink()
    expect_error(voc, tmp_path / "out", r"cat_trainval\.txt:3: image 000003 is not there .*JPEGImages/000003\.jpg")


def test_a_label_outside_one_minus_one_zero_is_an_error_naming_file_line_and_value(voc, tmp_path):
    path = voc / "ImageSets/Main/dog_test.txt"
    path.write_text(path.read_text().replace("000006  1", "000006  2"))
    expect_error(voc, tmp_path / "out", r"dog_test\.txt:2: label '2' for image 000006 is not 1, -1 or 0")


def test_malformed_annotation_is_an_error_naming_the_file(voc, tmp_path):
    (voc / "Annotations" / "000004.xml").write_text("<annotation><size><width>16</width>")
    expect_error(voc, tmp_path / "out", r"Annotations/000004\.xml: malformed XML \(.*line 1")


def test_a_class_with_no_positives_in_a_split_is_an_error_naming_it(voc, tmp_path):
    path = voc / "ImageSets/Main/owl_test.txt"
    path.write_text(path.read_text().replace("000005  1", "000005 -1"))
    expect_error(voc, tmp_path / "out", r"class owl has no positives in split test \(test\).*owl_test\.txt")


def test_an_image_missing_from_one_class_file_is_an_error(voc, tmp_path):
    path = voc / "ImageSets/Main/cat_trainval.txt"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:3]))
    expect_error(voc, tmp_path / "out", r"cat_trainval\.txt has no line for image 000004 \(listed in .*trainval\.txt\)")


def test_limits_keep_images_round_robin_over_classes_and_check_positives(voc, tmp_path):
    source = VOC(source_from_uri(str(voc)).tree, train_limit=3)
    assert [name for name, _, _, split in source if split == "train"] == [
        "JPEGImages/000001.jpg", "JPEGImages/000002.jpg", "JPEGImages/000003.jpg"]
    with pytest.raises(DataError, match="class owl has no positives in split train .*first 2 images kept by"):
        prep(str(voc), str(tmp_path / "out"), train_limit=2)


def test_an_undecodable_image_is_skipped_unless_it_held_a_class_last_positive(voc, tmp_path):
    (voc / "JPEGImages" / "000002.jpg").write_bytes(b"not a jpeg")
    metrics = prep(str(voc), str(tmp_path / "a"))
    assert (metrics["num_train"], metrics["num_skipped"]) == (3, 1)
    (voc / "JPEGImages" / "000005.jpg").write_bytes(b"not a jpeg")  # the only test image with a cat
    with pytest.raises(DataError, match="class cat has no positives left in split test"):
        prep(str(voc), str(tmp_path / "b"))
    assert not storage.is_complete(str(tmp_path / "b"))


def test_voc_folder_on_s3_is_read_through_the_same_reader(voc, s3_server, tmp_path):
    raw = f"s3://{s3_server}/voc"
    for path in sorted(p for p in voc.rglob("*") if p.is_file()):
        storage.upload(path, f"{raw}/VOC2007/{path.relative_to(voc).as_posix()}")
    metrics = prep(raw, str(tmp_path / "ds"))
    assert (metrics["num_train"], metrics["num_test"]) == (4, 2)
    assert ParquetDataset(str(tmp_path / "ds"), "test").labels.tolist() == list(TEST.values())
