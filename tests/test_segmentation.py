"""The segmentation stage: FCN on MMSegmentation from an extracted backbone and from random init, on the
det/seg dataset artifact (VOC or Cityscapes layout); the seed's R50 configs build with our weights loaded;
bad input is refused before training."""
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_lib.benchmarks import segmentation as seg
from ssl_lib.benchmarks.features import load_backbone_meta
from ssl_lib.data import mosaic
from ssl_lib.errors import ConfigError, DataError
from ssl_lib.models.backbones import ResNet
from ssl_lib.stages.segmentation import segmentation

pytestmark = pytest.mark.filterwarnings("ignore")
VOC = "VOCdevkit/VOC2007"
MOSAIC_SEED = 27  # the first seed whose 12 trainval and 8 test images hold every class


def _write_dataset(root, layouts, name="fashion-mnist-mosaic"):
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(json.dumps({"format": "ssl-detseg-v1", "source": "test", "name": name,
                                                    "layouts": layouts, "counts": {}, "skipped": []}))
    (root / "_SUCCESS").write_text("")
    return str(root)


def _voc_seg(num_train, num_test):
    def split(image_set, n):
        return {"ann_file": f"{VOC}/ImageSets/Segmentation/{image_set}.txt", "img_prefix": f"{VOC}/JPEGImages",
                "seg_prefix": f"{VOC}/SegmentationClass", "num_images": n}
    return {"classes": ["background", *mosaic.MOSAIC_CLASSES], "train": split("trainval", num_train),
            "test": split("test", num_test)}


def _write_backbone(folder, state, **arch):
    """A folder as the extract stage writes it."""
    folder.mkdir(parents=True)
    torch.save(state, folder / "backbone.pth")
    meta = {"algorithm": "MoCo", "epoch": 1, "backbone": dict(type="ResNet", **arch), "sha256": "0" * 64,
            "num_tensors": len(state)}
    (folder / "backbone.json").write_text(json.dumps(meta))
    (folder / "_SUCCESS").write_text("")
    return str(folder)


def _distinct_state(model):
    """Every float tensor random (BN's ones and zeros too), so equal weights can only come from loading."""
    torch.manual_seed(1)
    return {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def mosaic_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("detseg")
    mosaic.generate(root / VOC, 12, 8, size=64, seed=MOSAIC_SEED)
    return _write_dataset(root, {"voc_seg": _voc_seg(12, 8)})


@pytest.fixture(scope="module")
def small_backbone(tmp_path_factory):
    state = _distinct_state(ResNet(18, base_channels=16, stem="cifar"))
    return _write_backbone(tmp_path_factory.mktemp("extract") / "backbone", state, depth=18, base_channels=16,
                           stem="cifar")


def _finite(result):
    return set(result) == {"mIoU", "aAcc", "mAcc"} and all(math.isfinite(v) for v in result.values())


def test_stage_trains_fcn_on_mosaic_from_backbone_and_from_random_init(mosaic_data, small_backbone, tmp_path):
    out = tmp_path / "result"
    metrics = segmentation(mosaic_data, small_backbone, str(out), iters=2)
    assert metrics == json.loads((out / "metrics.json").read_text())
    assert (out / "_SUCCESS").exists() and sorted(p.name for p in out.iterdir()) == ["_SUCCESS", "metrics.json"]
    assert metrics["protocol"] == "segmentation" and metrics["benchmark"] == "voc12aug"
    assert metrics["config"] == seg.SMALL_CONFIG and metrics["iters"] == 2 and metrics["image_size"] == 64
    assert (metrics["num_train"], metrics["num_test"]) == (12, 8)
    assert set(metrics["results"]) == {"pretrained", "random_init"}
    assert all(_finite(r) for r in metrics["results"].values()), metrics["results"]


def test_small_backbone_weights_load_into_sslresnet_through_init_cfg(mosaic_data, small_backbone, tmp_path):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    from ssl_lib.benchmarks.mm_models import register

    register()
    init_default_scope("mmseg")
    meta = load_backbone_meta(small_backbone)
    layout = seg.read_layout(mosaic_data, "voc12aug")
    cfg = seg.build_config(seg.default_config("voc12aug", meta), [], meta, small_backbone, layout,
                           tmp_path, 0, 0)
    model = MODELS.build(seg.with_init(cfg, f"{small_backbone}/backbone.pth").model)
    model.init_weights()
    ours = torch.load(f"{small_backbone}/backbone.pth", weights_only=True)
    got = model.backbone.state_dict()
    assert set(got) == set(ours)
    assert all(torch.equal(got[k], ours[k]) for k in ours)
    assert model.decode_head.out_channels == 11  # background + the 10 mosaic classes


@pytest.mark.parametrize("protocol, iters, crop, batch", [("voc12aug", 20000, (512, 512), 16),
                                                          ("cityscapes", 40000, (769, 769), 8)])
def test_seed_r50_configs_build_in_mmseg_with_our_weights_key_by_key(tmp_path, protocol, iters, crop, batch):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    from ssl_lib.benchmarks.mm_models import register

    register()
    init_default_scope("mmseg")
    state = _distinct_state(ResNet(50))
    backbone = _write_backbone(tmp_path / "r50", state, depth=50, base_channels=64, stem="imagenet")
    meta = load_backbone_meta(backbone)
    config = seg.default_config(protocol, meta)
    assert config == seg.SEED_CONFIGS[protocol]
    name = seg.PROTOCOL_LAYOUTS[protocol]
    part = {"ann_file": "x.txt", "img_prefix": "img", "seg_prefix": "seg", "num_images": 1}
    layout = {"name": name, "classes": [f"c{i}" for i in range(5)], "train": part, "test": part}
    cfg = seg.build_config(config, [], meta, backbone, layout, tmp_path, 0, 0)
    assert cfg.model.backbone.type == "ResNet" and cfg.model.backbone.dilations == (1, 1, 2, 4)
    assert cfg.model.backbone.norm_cfg.type == "SyncBN"
    assert (cfg.train_cfg.max_iters, cfg.model.data_preprocessor.size, cfg.train_dataloader.batch_size) == (
        iters, crop, batch)
    assert cfg.param_scheduler[0].end == iters and cfg.optim_wrapper.optimizer.lr == 0.01
    model = MODELS.build(seg.with_init(cfg, f"{backbone}/backbone.pth").model)
    model.init_weights()
    got = model.backbone.state_dict()
    assert set(got) == set(state)
    different = [k for k in state if not torch.equal(got[k], state[k])]
    assert not different, different[:5]
    assert model.decode_head.out_channels == 5


def test_cityscapes_layout_with_void_region_trains_and_tests(small_backbone, tmp_path):
    from mmseg.datasets import CityscapesDataset

    root = tmp_path / "detseg"
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for i in range(2):
            img_dir, gt_dir = root / f"cityscapes/leftImg8bit/{split}/aachen", root / f"cityscapes/gtFine/{split}/aachen"
            img_dir.mkdir(parents=True, exist_ok=True)
            gt_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (32, 64, 3), dtype=np.uint8)).save(
                img_dir / f"aachen_{i:06d}_000019_leftImg8bit.png")
            label = np.zeros((32, 64), np.uint8)
            label[:, 32:] = 13  # car
            label[:8] = 255  # void: ignored in the loss and the metric
            Image.fromarray(label).save(gt_dir / f"aachen_{i:06d}_000019_gtFine_labelTrainIds.png")
    layout = {"classes": list(CityscapesDataset.METAINFO["classes"]),
              "train": {"img_prefix": "cityscapes/leftImg8bit/train", "seg_prefix": "cityscapes/gtFine/train",
                        "num_images": 2},
              "test": {"img_prefix": "cityscapes/leftImg8bit/val", "seg_prefix": "cityscapes/gtFine/val",
                       "num_images": 2}}
    dataset = _write_dataset(root, {"cityscapes": layout}, name="cityscapes-fixture")
    metrics = segmentation(dataset, small_backbone, str(tmp_path / "out"), protocol="cityscapes", iters=1,
                           baseline=False)
    assert metrics["benchmark"] == "cityscapes" and list(metrics["results"]) == ["pretrained"]
    assert _finite(metrics["results"]["pretrained"]), metrics["results"]


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started")
    monkeypatch.setattr(seg, "run_one", refuse)


def test_small_backbone_with_the_seed_r50_config_is_refused_before_training(mosaic_data, small_backbone,
                                                                             tmp_path, no_training):
    config = seg.SEED_CONFIGS["voc12aug"]
    with pytest.raises(ConfigError) as err:
        segmentation(mosaic_data, small_backbone, str(tmp_path / "out"), config=config)
    assert config in str(err.value) and "ResNet-50" in str(err.value)
    assert "ResNet-18 at base width 16 with the cifar stem" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_vit_backbone_is_refused_before_training(mosaic_data, tmp_path, no_training):
    backbone = tmp_path / "vit"
    backbone.mkdir()
    (backbone / "backbone.json").write_text(json.dumps({"backbone": {"type": "VisionTransformer"}}))
    with pytest.raises(ConfigError, match="VisionTransformer"):
        segmentation(mosaic_data, str(backbone), str(tmp_path / "out"))


def test_dataset_without_the_protocols_layout_is_refused_before_training(small_backbone, tmp_path, no_training):
    det_only = {"voc_det": {"classes": list(mosaic.MOSAIC_CLASSES), "train": [], "test": []}}
    dataset = _write_dataset(tmp_path / "detseg", det_only, name="voc-detection-only")
    with pytest.raises(DataError) as err:
        segmentation(dataset, small_backbone, str(tmp_path / "out"))
    assert "voc-detection-only" in str(err.value) and "'voc_seg'" in str(err.value)
    assert "['voc_det']" in str(err.value)
    with pytest.raises(DataError, match="'cityscapes'"):
        segmentation(dataset, small_backbone, str(tmp_path / "out"), protocol="cityscapes")


def test_missing_label_folder_is_refused_before_training(mosaic_data, small_backbone, tmp_path, no_training):
    layout = _voc_seg(12, 8)
    layout["test"]["seg_prefix"] = f"{VOC}/SegmentationClassAug"
    dataset = _write_dataset(tmp_path / "detseg", {"voc_seg": layout})
    (tmp_path / "detseg" / "VOCdevkit").symlink_to(f"{mosaic_data}/VOCdevkit")
    with pytest.raises(DataError, match="SegmentationClassAug"):
        segmentation(dataset, small_backbone, str(tmp_path / "out"))
