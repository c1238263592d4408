"""The detection stage on MMDetection: a few iterations on a tiny mosaic artifact give the seed's
table for both protocols; the seed's R50 configs build mmdet models that hold extract's weights key
by key; a backbone or a dataset the protocol cannot take is refused before any training."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from ssl_lib.data import detseg
from ssl_lib.errors import ConfigError, DataError
from ssl_lib.models.backbones import ResNet
from ssl_lib.stages.detection import detection

pytest.importorskip("mmdet")

VOC_CONFIG = "benchmarks/mmdetection/voc0712/faster_rcnn_r50_c4_mstrain_24k_voc0712.py"
COCO_CONFIG = "benchmarks/mmdetection/coco/mask_rcnn_r50_fpn_mstrain_1x_coco.py"
TRAIN, TEST = 12, 8
MOSAIC_SEED = 27  # the first seed whose 12 + 8 images hold every class in both sets (the generator's rule)


def copy_with(dataset: Path, to: Path, edit_manifest=None, edit_coco=None) -> Path:
    """A copy of the artifact with its manifest or a COCO file changed (what prep itself would refuse)."""
    shutil.copytree(dataset, to)
    if edit_manifest:
        manifest = json.loads((to / "manifest.json").read_text())
        edit_manifest(manifest)
        (to / "manifest.json").write_text(json.dumps(manifest))
    if edit_coco:
        image_set, edit = edit_coco
        path = to / f"coco/annotations/instances_{image_set}.json"
        coco = json.loads(path.read_text())
        edit(coco)
        path.write_text(json.dumps(coco))
    return to


def write_backbone(root: Path, backbone: dict, state: dict | None = None) -> Path:
    """Extract's artifact: backbone.pth and backbone.json."""
    root.mkdir(parents=True)
    if state is None:
        state = ResNet(**{k: v for k, v in backbone.items() if k != "type"}).state_dict()
    torch.save(state, root / "backbone.pth")
    (root / "backbone.json").write_text(json.dumps({
        "algorithm": "mocov2", "epoch": 1, "backbone": backbone, "eval_pipeline": [],
        "source_checkpoint": "test", "source_sha256": "0" * 64, "sha256": "1" * 64, "num_tensors": len(state)}))
    return root


SMALL = dict(type="ResNet", depth=18, base_channels=16, stem="cifar")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convolutions: a second thread spinning on a shared machine costs far more than it gives."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """prep --task detseg's mosaic artifact (VOC2007 layout + its COCO JSONs) and a small backbone."""
    root = tmp_path_factory.mktemp("detection")
    detseg.build("fashion-mnist-mosaic", str(root / "dataset"), TRAIN, TEST, mosaic_size=64, mosaic_seed=MOSAIC_SEED)
    return root / "dataset", write_backbone(root / "backbone", SMALL)


@pytest.fixture
def no_training(monkeypatch):
    """Any Runner started from here on fails the test: the errors must come first."""
    import ssl_lib.benchmarks.detection as lib

    def refuse(*args, **kwargs):
        raise AssertionError("training started")
    monkeypatch.setattr(lib, "train_and_test", refuse)


@pytest.mark.parametrize("protocol, names", [
    ("voc0712", {"mAP", "AP50"}),
    ("coco", {"bbox_mAP", "bbox_AP50", "bbox_AP75", "segm_mAP", "segm_AP50", "segm_AP75"}),
])
def test_two_iterations_on_the_mosaic_give_the_seed_table_for_pretrained_and_random_init(
        artifacts, tmp_path, protocol, names, capsys):
    dataset, backbone = artifacts
    out = detection(str(dataset), str(backbone), str(tmp_path / "out"), protocol=protocol, iters=2)
    written = json.loads((tmp_path / "out/metrics.json").read_text())
    assert written == out and (tmp_path / "out/_SUCCESS").exists()
    assert out["protocol"] == "detection" and out["benchmark"] == protocol and out["iters"] == 2
    assert out["config"].startswith("benchmarks/mmdetection/mosaic/")  # the small config for a small backbone
    assert set(out["results"]) == {"pretrained", "random_init"}
    for result in out["results"].values():
        assert set(result) == names and all(math.isfinite(v) and 0 <= v <= 100 for v in result.values())
    assert (out["num_train"], out["num_test"]) == (TRAIN, TEST)
    assert out["backbone_sha256"] == "1" * 64 and out["algorithm"] == "mocov2" and out["seconds"] > 0
    printed = capsys.readouterr().out
    assert "detection pretrained   iter 2/2" in printed and "detection random_init  iter 2/2" in printed
    assert "loading annotations" not in printed  # pycocotools' chatter stays out of the stage's output


def _model_with_weights(config: str, weights: Path):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    from ssl_lib.benchmarks.detection import load_config, set_pretrained

    cfg = load_config(config)
    init_default_scope(cfg.default_scope)
    set_pretrained(cfg, str(weights))
    model = MODELS.build(cfg.model)
    model.init_weights()
    return cfg, model


@pytest.fixture(scope="module")
def r50_weights(tmp_path_factory) -> tuple[Path, dict]:
    torch.manual_seed(1)
    state = ResNet(50).state_dict()  # not torchvision's init: equal values mean these were loaded
    path = tmp_path_factory.mktemp("r50") / "backbone.pth"
    torch.save(state, path)
    return path, state


def test_the_seed_r50_c4_config_builds_faster_rcnn_holding_our_weights_in_backbone_and_roi_head(r50_weights):
    path, ours = r50_weights
    cfg, model = _model_with_weights(VOC_CONFIG, path)
    assert cfg.model.backbone.norm_cfg.type == "SyncBN" and cfg.train_cfg.max_iters == 24000
    assert cfg.test_evaluator.iou_thrs == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    loaded = dict(model.backbone.state_dict())
    loaded.update({k: v for k, v in model.roi_head.shared_head.state_dict().items() if k.startswith("layer4.")})
    assert sorted(loaded) == sorted(ours)
    for key, value in ours.items():
        assert torch.equal(loaded[key], value), key
    assert type(model.roi_head.shared_head).__name__ == "ResLayerExtraNorm"  # MoCo's extra norm after layer4


def test_the_seed_r50_fpn_config_builds_mask_rcnn_holding_our_weights_in_its_backbone(r50_weights):
    path, ours = r50_weights
    cfg, model = _model_with_weights(COCO_CONFIG, path)
    assert cfg.model.neck.norm_cfg.type == "SyncBN" and cfg.train_cfg.max_epochs == 12
    loaded = model.backbone.state_dict()
    assert sorted(loaded) == sorted(ours)
    for key, value in ours.items():
        assert torch.equal(loaded[key], value), key


def test_the_default_config_for_a_resnet50_is_the_seed_one():
    from ssl_lib.benchmarks.detection import default_config

    r50 = dict(type="ResNet", depth=50, base_channels=64, stem="imagenet")
    assert default_config("voc0712", r50) == VOC_CONFIG and default_config("coco", r50) == COCO_CONFIG
    assert "mosaic" in default_config("voc0712", SMALL) and "mosaic" in default_config("coco", SMALL)


def test_an_epoch_schedule_becomes_the_same_shape_in_iterations():
    from ssl_lib.benchmarks.detection import load_config, set_iters

    cfg = load_config(COCO_CONFIG)
    set_iters(cfg, 120)
    warm_up, steps = cfg.param_scheduler
    assert cfg.train_cfg == dict(type="IterBasedTrainLoop", max_iters=120, val_interval=120)
    assert (warm_up["end"], warm_up["by_epoch"]) == (120, False)  # 500 warm-up iterations, capped
    assert (steps["milestones"], steps["end"], steps["by_epoch"]) == ([80, 110], 120, False)  # 8 and 11 of 12


def test_image_size_scales_test_and_training_sizes_alike():
    from ssl_lib.benchmarks.detection import load_config, set_image_size

    cfg = load_config(VOC_CONFIG)
    set_image_size(cfg, 400)
    test_resize = [t for t in cfg.test_dataloader.dataset.pipeline if t["type"] == "Resize"][0]
    assert tuple(test_resize["scale"]) == (666, 400)
    train = [t for t in cfg.train_dataloader.dataset.datasets[0].pipeline if t["type"] == "RandomChoiceResize"][0]
    assert [tuple(s) for s in train["scales"]][0] == (666, 240) and tuple(train["scales"][-1]) == (666, 400)


def test_a_vit_is_refused_where_r50_c4_is_asked(artifacts, tmp_path, no_training):
    dataset, _ = artifacts
    vit = write_backbone(tmp_path / "vit", dict(type="VisionTransformer", arch="small", patch_size=16),
                         state={"cls_token": torch.zeros(1, 1, 8)})
    with pytest.raises(ConfigError, match="VisionTransformer.*ResNet-50.*FasterRCNN C4"):
        detection(str(dataset), str(vit), str(tmp_path / "out"), config=VOC_CONFIG)
    assert not (tmp_path / "out").exists()


def test_a_small_resnet_is_refused_by_the_seed_r50_config(artifacts, tmp_path, no_training):
    dataset, backbone = artifacts
    with pytest.raises(ConfigError, match="ResNet-18 \\(base width 16, cifar stem\\) where .* asks for a ResNet-50"):
        detection(str(dataset), str(backbone), str(tmp_path / "out"), protocol="coco", config=COCO_CONFIG)


def test_a_dataset_without_boxes_is_refused_naming_its_layouts(tmp_path, artifacts, no_training):
    dataset, backbone = artifacts
    seg_only = copy_with(dataset, tmp_path / "seg", edit_manifest=lambda m: [m["layouts"].pop(k) for k in
                                                                              ("voc_det", "coco")])
    with pytest.raises(DataError, match="fashion-mnist-mosaic .*voc_det.*\\['voc_seg'\\]"):
        detection(str(seg_only), str(backbone), str(tmp_path / "out"))


def test_the_coco_protocol_refuses_annotations_without_masks(tmp_path, artifacts, no_training):
    dataset, backbone = artifacts
    boxes = copy_with(dataset, tmp_path / "boxes",
                      edit_coco=("trainval", lambda coco: [a.pop("segmentation") for a in coco["annotations"]]))
    with pytest.raises(DataError, match="have no mask"):
        detection(str(boxes), str(backbone), str(tmp_path / "out"), protocol="coco")


def test_class_lists_that_differ_between_train_and_test_are_refused(tmp_path, artifacts, no_training):
    dataset, backbone = artifacts
    fewer = copy_with(dataset, tmp_path / "classes", edit_coco=("test", lambda coco: coco["categories"].pop()))
    with pytest.raises(DataError, match="class lists differ between train"):
        detection(str(fewer), str(backbone), str(tmp_path / "out"), protocol="coco")


@pytest.mark.parametrize("protocol", ["voc0712", "coco"])
@pytest.mark.parametrize("backbone", [dict(type="ResNet", depth=18, base_channels=8, stem="cifar"),
                                      dict(type="ResNet", depth=34, base_channels=16, stem="imagenet")])
def test_the_default_cpu_configs_fit_any_small_resnet_and_hold_its_weights(protocol, backbone, tmp_path):
    from ssl_lib.benchmarks.detection import check_backbone, default_config, fit_small_backbone

    state = ResNet(**{k: v for k, v in backbone.items() if k != "type"}).state_dict()
    torch.save(state, tmp_path / "backbone.pth")
    config = default_config(protocol, backbone)
    from mmengine.registry import init_default_scope

    from ssl_lib.benchmarks.detection import load_config, set_pretrained

    cfg = load_config(config)  # as written: for ResNet-18 at base 16 with the CIFAR stem
    init_default_scope(cfg.default_scope)
    set_pretrained(cfg, str(tmp_path / "backbone.pth"))
    fit_small_backbone(cfg, backbone)
    check_backbone(cfg, backbone, config, str(tmp_path))  # raises when depth, width or stem still differ
    from mmdet.registry import MODELS

    model = MODELS.build(cfg.model)
    model.init_weights()
    loaded = model.backbone.state_dict()
    for key, value in loaded.items():
        assert torch.equal(value, state[key]), key
    model.eval()
    with torch.no_grad():  # the heads take the widths and strides of this backbone's maps
        feats = model.extract_feat(torch.randn(1, 3, 64, 64))
        model.rpn_head(feats)
