"""The seed's detection benchmarks on MMDetection 3.x: an mmdet config + the det/seg dataset artifact
+ extract's backbone -> a model trained and tested by mmengine's Runner, from the backbone and from
random init, with the metrics of the seed's tables.

Protocols: `voc0712`, Faster R-CNN C4 on VOC07+12 trainval / VOC2007 test (mAP over IoU 0.5:0.95
and AP50, VOC2007's 11-point AP), and `coco`, Mask R-CNN FPN on COCO2017 (box and mask mAP, AP50,
AP75). The seed's R50 configs (benchmarks/mmdetection/{voc0712,coco}/) use mmdet's own ResNet, whose
keys are those of extract's backbone.pth at ResNet-50 / base 64 / ImageNet stem; every other
backbone of ours runs through SSLResNet (mm_models) in the small configs for the mosaic
(benchmarks/mmdetection/mosaic/). The config's datasets, class count and init_cfg checkpoints are
filled in here from the artifact's manifest.json and the backbone; a backbone the config cannot
take, a dataset without the protocol's layout or masks, or class lists that disagree are refused
before any training.

Importing this module registers our backbones and the seed's C4 RoI head with its extra norm
(MoCo's Res5ROIHeadsExtraNorm) in mmdet's MODELS: the configs name it in `custom_imports`.
"""
from __future__ import annotations

import contextlib
import copy
import gc
import io
import json
import pprint
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import torch
from mmcv.cnn import build_norm_layer
from mmdet.models.backbones import ResNet as MMDetResNet
from mmdet.models.roi_heads.shared_heads import ResLayer
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope

from .. import storage
from ..config import load_config
from ..data.detseg import load_manifest
from ..errors import ConfigError, DataError
from .features import load_backbone_meta
from .mm_models import SSLResLayer, _load, is_r50, load_backbone_state, register

PROTOCOLS = {  # protocol -> manifest layout, config for a ResNet-50 (base 64, ImageNet stem), for the rest
    "voc0712": ("voc_det", "benchmarks/mmdetection/voc0712/faster_rcnn_r50_c4_mstrain_24k_voc0712.py",
                "benchmarks/mmdetection/mosaic/faster_rcnn_r18-w16_c4_mstrain-200it_mosaic.py"),
    "coco": ("coco", "benchmarks/mmdetection/coco/mask_rcnn_r50_fpn_mstrain_1x_coco.py",
             "benchmarks/mmdetection/mosaic/mask_rcnn_r18-w16_fpn_mstrain-80it_mosaic.py"),
}
COCO_METRICS = {f"{kind}_{name}": f"coco/{kind}_{key}" for kind in ("bbox", "segm")
                for name, key in (("mAP", "mAP"), ("AP50", "mAP_50"), ("AP75", "mAP_75"))}
SEED = 0  # both runs: the same heads' init and data order, only the backbone's start differs


@MODELS.register_module()
class ResLayerExtraNorm(ResLayer):
    """mmdet's C4 RoI head (layer4) with a norm after it, as MoCo's detectron2 Res5ROIHeadsExtraNorm
    and the seed's config: the backbone's last stage had its BN inside the block, the head adds one."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        channels = 64 * 2**self.stage * MMDetResNet.arch_settings[kwargs["depth"]][0].expansion
        self.add_module("norm", build_norm_layer(self.norm_cfg, channels)[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(getattr(self, f"layer{self.stage + 1}")(x))


@MODELS.register_module()
class SSLResLayerExtraNorm(SSLResLayer):
    """The same extra norm after our layer4 (SSLResLayer), for the small configs."""

    def __init__(self, *args, norm_cfg: dict | None = None, **kwargs):
        super().__init__(*args, norm_cfg=norm_cfg, **kwargs)
        self.norm = build_norm_layer(dict(norm_cfg or dict(type="BN")), self.out_channels)[1]

    def init_weights(self) -> None:
        cfg = self.init_cfg or {}
        if cfg.get("type") == "Pretrained":  # layer4 from the file; the norm is new
            _load(self.layer4, load_backbone_state(cfg["checkpoint"]), cfg["checkpoint"], prefix="layer4.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.layer4(x))


register()  # SSLResNet, SSLResLayer


class _Progress(Hook):
    """A line every tenth of the training on the stage's stdout (the engine's own output is held back)."""

    priority = "LOW"

    def __init__(self, label: str, max_iters: int, out):
        self.label, self.max_iters, self.every, self.out = label, max_iters, max(1, max_iters // 10), out
        self.start = None

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self.start = self.start or time.time()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        i = runner.iter + 1
        if i % self.every == 0 or i in (1, self.max_iters):
            loss = float(outputs["loss"].detach()) if outputs and "loss" in outputs else float("nan")
            print(f"detection {self.label:12s} iter {i}/{self.max_iters}  loss {loss:.3f}  "
                  f"{(time.time() - self.start) / i:.2f} s/iter", file=self.out, flush=True)


class _RunConfig(Config):
    """A config whose text is not run through yapf: mmengine formats it three times a run (dump, log
    line, message hub), seconds of a one-minute CPU benchmark, for a work dir that is thrown away."""

    @property
    def pretty_text(self) -> str:
        return pprint.pformat(self.to_dict())


def describe(backbone: dict) -> str:
    if backbone.get("type") not in ("ResNet", "SSLResNet"):
        return f"a {backbone.get('type')}"
    return (f"a ResNet-{backbone.get('depth')} (base width {backbone.get('base_channels', 64)}, "
            f"{backbone.get('stem', 'imagenet')} stem)")


def default_config(protocol: str, backbone: dict) -> str:
    layout_seed_small = PROTOCOLS[protocol]
    return layout_seed_small[1] if is_r50(backbone) else layout_seed_small[2]


def fit_small_backbone(cfg: Config, backbone: dict) -> None:
    """Fit a default CPU config (written for ResNet-18, base 16, CIFAR stem) to the ResNet that extract
    wrote: depth, width and stem, the channel widths of the RPN / RoI heads or the FPN that read it, and,
    for the ImageNet stem (4x coarser maps), the anchor and RoI strides."""
    from ..models.backbones import ResNet

    depth, base = backbone.get("depth"), backbone.get("base_channels", 64)
    stem = backbone.get("stem", "imagenet")
    if backbone.get("type") != "ResNet" or depth not in ResNet.arch_settings:
        return  # check_backbone names what does not fit
    probe = ResNet(depth, base_channels=base, stem=stem)
    ch = [probe.feat_channels(i) for i in range(5)]
    scale = 4 if stem == "imagenet" else 1
    model = cfg.model
    model.backbone.update(depth=depth, base_channels=base, stem=stem)
    roi = model.roi_head
    if roi.get("shared_head"):  # C4: the RPN and the RoI extractor on layer3, layer4 in the RoI head
        model.rpn_head.in_channels = ch[3]
        roi.shared_head.update(depth=depth, base_channels=base)
        roi.bbox_roi_extractor.out_channels = ch[3]
        roi.bbox_head.in_channels = ch[4]
        model.rpn_head.anchor_generator.strides = [st * scale for st in model.rpn_head.anchor_generator.strides]
        roi.bbox_roi_extractor.featmap_strides = [st * scale for st in roi.bbox_roi_extractor.featmap_strides]
    else:  # FPN over layer1..4
        model.neck.in_channels = ch[1:]
        model.rpn_head.anchor_generator.strides = [st * scale for st in model.rpn_head.anchor_generator.strides]
        for name in ("bbox_roi_extractor", "mask_roi_extractor"):
            if roi.get(name):
                roi[name].featmap_strides = [st * scale for st in roi[name].featmap_strides]


def check_backbone(cfg: Config, meta_backbone: dict, config: str, weights: str) -> None:
    """The config's backbone must be the one extract wrote: mmdet's ResNet takes only a ResNet-50 at
    base 64 / ImageNet stem (its keys are torchvision's), SSLResNet the depth, width and stem it names."""
    want = cfg.model.backbone
    if want.type == "ResNet":
        asked = dict(type="ResNet", depth=want.depth, base_channels=64, stem="imagenet")
    elif want.type == "SSLResNet":
        asked = dict(type="ResNet", depth=want.depth, base_channels=want.get("base_channels", 64),
                     stem=want.get("stem", "imagenet"))
    else:
        raise ConfigError(f"{config}: backbone type {want.type!r} is not one the detection stage can load "
                          f"weights into (ResNet for the seed's R50 configs, SSLResNet for ours)")
    have = {k: meta_backbone.get(k, d) for k, d in (("type", None), ("depth", None), ("base_channels", 64),
                                                     ("stem", "imagenet"))}
    if have != asked:
        head = "C4" if cfg.model.roi_head.get("shared_head") else "FPN"
        raise ConfigError(f"{weights} holds {describe(meta_backbone)} where {config} asks for "
                          f"{describe(asked)} ({cfg.model.type} {head}): give a config for this backbone "
                          f"(config='' picks one)")


def check_layout(manifest: dict, protocol: str, dataset: str) -> dict:
    layout_name = PROTOCOLS[protocol][0]
    layouts = manifest.get("layouts") or {}
    if layout_name not in layouts:
        raise DataError(f"dataset {manifest.get('name', dataset)} ({dataset}) has no boxes in the {layout_name} "
                        f"layout that protocol {protocol!r} reads; it has {sorted(layouts) or 'no layouts'}")
    layout = layouts[layout_name]
    splits = {"train": layout.get("train"), "test": layout.get("test")}
    if protocol == "voc0712" and not (isinstance(splits["test"], list) and len(splits["test"]) == 1):
        raise DataError(f"{dataset}: voc_det.test must list one image set (VOC2007 test), got {splits['test']!r}")
    for split, sets in splits.items():
        sets = sets if isinstance(sets, list) else [sets]
        if not sets or not all(isinstance(s, dict) and s.get("ann_file") and s.get("num_images", 0) > 0
                               for s in sets):
            raise DataError(f"{dataset}: {layout_name}.{split} has no images (manifest: {splits[split]!r})")
    if not layout.get("classes"):
        raise DataError(f"{dataset}: {layout_name}.classes is empty")
    return layout


def check_coco_annotations(root: Path, layout: dict, dataset: str) -> None:
    """Masks on every object, and the same categories, in the manifest's order, in train and test."""
    names = {}
    for split in ("train", "test"):
        path = root / layout[split]["ann_file"]
        try:
            coco = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise DataError(f"{dataset}: cannot read the COCO annotations {path}: {err}") from err
        no_mask = sum(1 for a in coco.get("annotations", []) if not a.get("segmentation"))
        if no_mask:
            raise DataError(f"{dataset}: {no_mask} of {len(coco.get('annotations', []))} objects in {path} have no "
                            f"mask ('segmentation'); protocol 'coco' trains Mask R-CNN (use 'voc0712' for boxes)")
        names[split] = [c["name"] for c in sorted(coco.get("categories", []), key=lambda c: c["id"])]
    if names["train"] != names["test"]:
        raise DataError(f"{dataset}: the class lists differ between train ({len(names['train'])}: "
                        f"{names['train'][:5]}...) and test ({len(names['test'])}: {names['test'][:5]}...)")
    if names["train"] != list(layout["classes"]):
        raise DataError(f"{dataset}: coco.classes of manifest.json {list(layout['classes'])[:5]}... are not the "
                        f"categories of {layout['train']['ann_file']} in id order {names['train'][:5]}...")


def _leaf(dataset_cfg: dict) -> dict:
    """The first plain dataset below Concat / Repeat wrappers: its pipeline and filters are the template."""
    while dataset_cfg.get("type") in ("ConcatDataset", "RepeatDataset", "ClassBalancedDataset"):
        dataset_cfg = dataset_cfg["datasets"][0] if "datasets" in dataset_cfg else dataset_cfg["dataset"]
    return dataset_cfg


def set_datasets(cfg: Config, protocol: str, layout: dict, root: Path) -> None:
    """The artifact's image sets in place of the config's, with its classes and their count."""
    classes = tuple(layout["classes"])
    train_leaf = copy.deepcopy(_leaf(cfg.train_dataloader.dataset.to_dict()))
    test_leaf = copy.deepcopy(_leaf(cfg.test_dataloader.dataset.to_dict()))
    common = dict(data_root=str(root), metainfo=dict(classes=classes))
    if protocol == "voc0712":
        def voc(leaf, entry):
            return dict(leaf, **common, ann_file=entry["ann_file"],
                        data_prefix=dict(sub_data_root=entry["data_root"].rstrip("/") + "/"))
        train = [voc(train_leaf, e) for e in layout["train"]]
        test = voc(test_leaf, layout["test"][0])
        train_dataset = train[0] if len(train) == 1 else dict(type="ConcatDataset", ignore_keys=["dataset_type"],
                                                              datasets=train)
    else:
        def coco(leaf, entry):
            return dict(leaf, **common, ann_file=entry["ann_file"],
                        data_prefix=dict(img=entry["img_prefix"].rstrip("/") + "/"))
        train_dataset, test = coco(train_leaf, layout["train"]), coco(test_leaf, layout["test"])
        cfg.test_evaluator.ann_file = str(root / layout["test"]["ann_file"])
    cfg.train_dataloader.dataset = train_dataset
    cfg.test_dataloader.dataset = test
    roi = cfg.model.roi_head
    roi.bbox_head.num_classes = len(classes)
    if roi.get("mask_head"):
        roi.mask_head.num_classes = len(classes)


def _scale_resizes(pipeline: list, factor: float) -> None:
    for t in pipeline:
        if t["type"] == "Resize":
            t["scale"] = tuple(round(s * factor) for s in t["scale"])
        elif t["type"] == "RandomChoiceResize":
            t["scales"] = [tuple(round(s * factor) for s in scale) for scale in t["scales"]]


def set_image_size(cfg: Config, size: int) -> None:
    """`size` = the test images' shorter side; the training sizes and longer-side caps scale with it."""
    test_pipeline = cfg.test_dataloader.dataset.pipeline
    resize = [t for t in test_pipeline if t["type"] == "Resize"]
    if len(resize) != 1:
        raise ConfigError(f"image_size: {cfg.filename}'s test pipeline has {len(resize)} Resize steps, not one")
    factor = size / min(resize[0]["scale"])
    _scale_resizes(test_pipeline, factor)
    train = cfg.train_dataloader.dataset
    for leaf in train.get("datasets", [train]):
        _scale_resizes(leaf["pipeline"], factor)


def set_iters(cfg: Config, iters: int) -> None:
    """Train `iters` iterations on the config's schedule shape: the steps at the same fractions of the
    run (an epoch schedule becomes one in iterations), warm-ups kept in iterations, capped at `iters`."""
    epoch_based = cfg.train_cfg.type != "IterBasedTrainLoop"
    total = cfg.train_cfg.max_epochs if epoch_based else cfg.train_cfg.max_iters
    schedulers = []
    for s in cfg.param_scheduler:
        s = dict(s)
        warm_up = not s.get("by_epoch", True) if epoch_based else s.get("end", total) < total
        if warm_up:
            s["end"] = min(s["end"], iters)
        else:
            scale = iters / total
            s.update(by_epoch=False, begin=round(s.get("begin", 0) * scale), end=iters)
            if "milestones" in s:
                s["milestones"] = [max(1, round(m * scale)) for m in s["milestones"]]
        schedulers.append(s)
    cfg.param_scheduler = schedulers
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=iters, val_interval=iters)
    cfg.train_dataloader.sampler = dict(type="InfiniteSampler", shuffle=True)
    cfg.log_processor = dict(cfg.get("log_processor", {}), by_epoch=False)


def set_pretrained(cfg: Config, checkpoint: str | None) -> None:
    """The backbone, and a C4 RoI head (its layer4), from `checkpoint`; None: their own random init."""
    init = dict(type="Pretrained", checkpoint=checkpoint) if checkpoint else None
    cfg.model.backbone.init_cfg = init
    shared = cfg.model.roi_head.get("shared_head")
    if shared is not None:
        shared.init_cfg = init


def check_weights_fit(cfg: Config, state: dict, weights: str) -> None:
    """Every backbone / C4-head tensor in the file with the model's shape: mmengine's Pretrained init
    loads non-strictly and would leave the rest at random without a word."""
    parts = [("backbone", cfg.model.backbone)]
    if cfg.model.roi_head.get("shared_head"):
        parts.append(("roi_head.shared_head", cfg.model.roi_head.shared_head))
    init_default_scope("mmdet")  # nested parts (norm layers) are looked up in mmdet's registries
    for name, part in parts:
        own = MODELS.build(dict(part.to_dict(), init_cfg=None)).state_dict()
        own = {k: v for k, v in own.items() if not k.startswith("norm.")}  # the extra norm is not pretrained
        missing = [k for k in own if k not in state]
        bad = [k for k in own if k in state and state[k].shape != own[k].shape]
        if missing or bad:
            raise DataError(f"{weights} does not fit the config's {name} ({part.type}): {len(missing)} missing "
                            f"tensors {missing[:3]}, {len(bad)} of another shape {bad[:3]}")


def finish_config(cfg: Config, work_dir: Path, label: str) -> None:
    """Quiet, single-test runs in a temporary work dir: no validation during training, no checkpoints."""
    name = f"detection-{label}-{uuid.uuid4().hex[:8]}"
    cfg.work_dir = str(work_dir / label)
    cfg.experiment_name = name
    cfg.log_level = "WARNING"
    cfg.visualizer = dict(cfg.visualizer, name=name)  # one per run: mmengine keeps instances by name
    cfg.randomness = dict(seed=SEED)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.default_hooks.checkpoint = None
    cfg.load_from, cfg.resume = None, False


def metrics_of(protocol: str, raw: dict) -> dict:
    """mmdet's figures (fractions) -> the seed's table (%, 2 decimals). VOCMetric rounds each AP to 3
    decimals, so AP50 comes to 0.1 %; its mAP, the mean over IoU 0.5:0.95, is not rounded."""
    keys = {"mAP": "pascal_voc/mAP", "AP50": "pascal_voc/AP50"} if protocol == "voc0712" else COCO_METRICS
    if protocol == "coco" and not raw:  # CocoMetric returns nothing when no detection clears the score threshold
        return {name: 0.0 for name in keys}
    missing = [k for k in keys.values() if k not in raw]
    if missing:
        raise ConfigError(f"the test evaluator gave {sorted(raw)}, not {missing} (VOCMetric with iou_thrs "
                          f"0.5..0.95 for voc0712, CocoMetric bbox + segm for coco)")
    return {name: round(float(raw[key]) * 100, 2) for name, key in keys.items()}


def train_and_test(cfg: Config, label: str) -> dict:
    """One run in mmengine's Runner; what the engine and pycocotools print is held back (logs are in
    the temporary work dir), progress goes to stdout."""
    from mmengine.runner import Runner

    out, start = sys.stdout, time.time()
    with contextlib.redirect_stdout(io.StringIO()):
        runner = Runner.from_cfg(_RunConfig(cfg.to_dict(), filename=cfg.filename))
        max_iters = cfg.train_cfg.get("max_iters") or cfg.train_cfg.max_epochs * len(runner.train_dataloader)
        runner.register_hook(_Progress(label, max_iters, out))
        runner.train()
        raw = runner.test()
    print(f"detection {label:12s} trained and tested in {time.time() - start:.1f} s", flush=True)
    del runner
    gc.collect()
    return raw


def run_detection(dataset: str, backbone: str, protocol: str = "voc0712", config: str = "", iters: int = 0,
                  image_size: int = 0, baseline: bool = True, cfg_options: list[str] | None = None) -> dict:
    """Train and test the protocol's detector from `backbone` (and from random init if `baseline`);
    returns the metrics.json content but `seconds`."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"detection: protocol {protocol!r} is not one of {sorted(PROTOCOLS)}")
    if iters < 0 or image_size < 0:
        raise ConfigError(f"detection: iters ({iters}) and image_size ({image_size}) must be >= 0 (0 = the config's)")
    meta = load_backbone_meta(backbone)
    manifest = load_manifest(dataset)
    layout = check_layout(manifest, protocol, dataset)
    chosen = not config
    config = config or default_config(protocol, meta["backbone"])
    cfg = load_config(config, cfg_options or [])
    if chosen and not is_r50(meta["backbone"]):
        fit_small_backbone(cfg, meta["backbone"])
    check_backbone(cfg, meta["backbone"], config, backbone)
    state = load_backbone_state(backbone)
    check_weights_fit(cfg, state, storage.join(backbone, "backbone.pth"))
    with tempfile.TemporaryDirectory(prefix="ssl-detection-") as tmp:
        tmp = Path(tmp)
        root = storage.local_dir(dataset, tmp)  # mmdet reads local files
        if protocol == "coco":
            check_coco_annotations(root, layout, dataset)
        weights = tmp / "backbone.pth"  # mmengine's Pretrained init reads local files only
        torch.save(state, weights)
        set_datasets(cfg, protocol, layout, root)
        if image_size:
            set_image_size(cfg, image_size)
        if iters:
            set_iters(cfg, iters)
        results = {}
        for label, checkpoint in (("pretrained", str(weights)), ("random_init", None))[: 2 if baseline else 1]:
            run_cfg = copy.deepcopy(cfg)
            set_pretrained(run_cfg, checkpoint)
            finish_config(run_cfg, tmp, label)
            results[label] = metrics_of(protocol, train_and_test(run_cfg, label))
            print(f"detection {label:12s} " + "  ".join(f"{k} {v:.2f}" for k, v in results[label].items()),
                  flush=True)
            shutil.rmtree(tmp / label, ignore_errors=True)
    train_sets = layout["train"] if isinstance(layout["train"], list) else [layout["train"]]
    test_sets = layout["test"] if isinstance(layout["test"], list) else [layout["test"]]
    schedule = cfg.train_cfg
    return {"protocol": "detection", "benchmark": protocol, "config": config,
            "iters": schedule.get("max_iters"), "epochs": schedule.get("max_epochs"),
            "image_size": image_size or min(next(t["scale"] for t in cfg.test_dataloader.dataset.pipeline
                                                 if t["type"] == "Resize")),
            "results": results, "dataset": manifest.get("name"),
            "num_train": sum(s["num_images"] for s in train_sets),
            "num_test": sum(s["num_images"] for s in test_sets),
            "backbone_sha256": meta.get("sha256"), "algorithm": meta.get("algorithm")}
