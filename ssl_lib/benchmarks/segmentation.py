"""The seed's segmentation benchmark on MMSegmentation's own runner: FCN fine-tuned end to end from the
extracted backbone, and again from random init (the baseline), then mIoU / aAcc / mAcc on the test split.

The config (the seed's R50-D8 configs, or our CPU recipe for small backbones) gives the model, the
pipelines and the schedule; the dataset artifact's manifest (`prep --task detseg`) gives the data: its
`voc_seg` layout for protocol `voc12aug`, its `cityscapes` layout for `cityscapes`, with their classes.
mmseg's `ResNet` (the seed's configs) takes only a ResNet-50 at base width 64 with the ImageNet stem,
whose keys are torchvision's; `SSLResNet` (ours) takes whatever ResNet extract wrote. Both load it
through `init_cfg=dict(type='Pretrained', checkpoint=<backbone.pth>)`.

Training runs in one process on one device with the schedule's whole batch
(`auto_scale_lr.base_batch_size`): SyncBN over the seed's 4 GPUs normalises over that same batch."""
from __future__ import annotations

import copy
import json
import tempfile
import time
import uuid
from pathlib import Path

from mmengine.config import Config
from mmengine.hooks import Hook

from .. import storage
from ..config import load_config
from ..errors import ConfigError, DataError
from ..models.backbones import ResNet
from .features import load_backbone_meta
from .mm_models import is_r50

PROTOCOL_LAYOUTS = {"voc12aug": "voc_seg", "cityscapes": "cityscapes"}  # protocol -> manifest layout
SEED_CONFIGS = {
    "voc12aug": "benchmarks/mmsegmentation/voc12aug/fcn_r50-d8_512x512_20k_voc12aug.py",
    "cityscapes": "benchmarks/mmsegmentation/cityscapes/fcn_r50-d8_769x769_40k_cityscapes.py",
}
SMALL_CONFIG = "benchmarks/mmsegmentation/mosaic/fcn_r18-w16_1xb8-100it_mosaic-64x64.py"
# layout -> (mmseg dataset type, image suffix, label-map suffix)
LAYOUT_DATASETS = {"voc_seg": ("PascalVOCDataset", ".jpg", ".png"),
                   "cityscapes": ("CityscapesDataset", "_leftImg8bit.png", "_gtFine_labelTrainIds.png")}
METRICS = ("mIoU", "aAcc", "mAcc")


def _arch(meta: dict) -> tuple:
    b = meta.get("backbone", {})
    return b.get("type"), b.get("depth"), b.get("base_channels", 64), b.get("stem", "imagenet")


def _describe(meta: dict) -> str:
    kind, depth, width, stem = _arch(meta)
    return f"a {kind}-{depth} at base width {width} with the {stem} stem" if kind == "ResNet" else f"a {kind}"


def default_config(protocol: str, meta: dict) -> str:
    """The seed's config for a torchvision-shaped ResNet-50, our CPU recipe for any other ResNet."""
    return SEED_CONFIGS[protocol] if is_r50(meta.get("backbone", {})) else SMALL_CONFIG


def _parts(split) -> list[dict]:
    return split if isinstance(split, list) else [split]


def read_layout(dataset: str, protocol: str) -> dict:
    """The manifest's layout that `protocol` reads, its files checked."""
    manifest_uri = storage.join(dataset, "manifest.json")
    if not storage.exists(manifest_uri):
        raise DataError(f"segmentation: {manifest_uri} not found (run prep --task detseg first)")
    if not storage.is_complete(dataset):
        raise DataError(f"segmentation: {dataset} has no _SUCCESS marker (prep did not finish)")
    manifest = json.loads(storage.read_text(manifest_uri))
    if manifest.get("format") != "ssl-detseg-v1":
        raise DataError(f"segmentation: {manifest_uri} has format {manifest.get('format')!r}, not 'ssl-detseg-v1'")
    name, layouts = PROTOCOL_LAYOUTS[protocol], manifest.get("layouts", {})
    if name not in layouts:
        raise DataError(f"segmentation: protocol {protocol!r} needs the {name!r} layout, but dataset "
                        f"{manifest.get('name', dataset)!r} ({dataset}) has only {sorted(layouts)}")
    layout = layouts[name]
    if not layout.get("classes"):
        raise DataError(f"segmentation: {manifest_uri}: layouts.{name}.classes is empty")
    for split in ("train", "test"):
        parts = _parts(layout.get(split) or [])
        if not parts or not sum(p.get("num_images", 0) for p in parts):
            raise DataError(f"segmentation: {manifest_uri}: layouts.{name}.{split} has no images")
    return dict(layout, name=name, dataset_name=manifest.get("name", dataset))


def _check_files(root: Path, layout: dict) -> None:
    for split in ("train", "test"):
        for part in _parts(layout[split]):
            for key in ("ann_file", "img_prefix", "seg_prefix"):
                if key in part and not (root / part[key]).exists():
                    raise DataError(f"segmentation: {layout['name']}.{split}.{key} {part[key]!r} is not in {root}")


def _datasets(layout: dict, split: str, root: Path, pipeline: list) -> dict:
    """mmseg dataset config(s) for one split of the layout; the protocol's own dataset type where its
    classes are the manifest's, else BaseSegDataset (any classes) with the same file naming."""
    from mmseg.registry import DATASETS

    kind, img_suffix, seg_suffix = LAYOUT_DATASETS[layout["name"]]
    classes = tuple(layout["classes"])
    if tuple(DATASETS.get(kind).METAINFO["classes"]) != classes:
        kind = "BaseSegDataset"
    parts = []
    for part in _parts(layout[split]):
        ds = dict(type=kind, data_root=str(root), img_suffix=img_suffix, seg_map_suffix=seg_suffix,
                  data_prefix=dict(img_path=part["img_prefix"], seg_map_path=part["seg_prefix"]),
                  ann_file=part.get("ann_file", ""), metainfo=dict(classes=classes), pipeline=pipeline)
        parts.append(ds)
    return parts[0] if len(parts) == 1 else dict(type="ConcatDataset", datasets=parts)


def _pipeline(ds: dict) -> list:
    return copy.deepcopy(ds["datasets"][0]["pipeline"] if ds.get("type") == "ConcatDataset" else ds["pipeline"])


def check_backbone(cfg: Config, meta: dict, config: str, weights: str) -> None:
    """Refuse an extracted backbone that the config's backbone cannot take, before anything is built;
    fit SSLResNet (depth, width, stem) and the heads' input widths to the extracted backbone."""
    backbone = cfg.model.backbone
    kind, depth, width, stem = _arch(meta)
    if kind != "ResNet":
        raise ConfigError(f"segmentation: {config} trains FCN on a ResNet; {weights} holds {_describe(meta)}")
    if backbone.type == "ResNet":
        if (depth, width, stem) != (backbone.depth, 64, "imagenet") or backbone.get("deep_stem"):
            raise ConfigError(
                f"segmentation: {config} uses mmseg's ResNet-{backbone.depth} (base width 64, ImageNet stem, "
                f"torchvision's keys); {weights} holds {_describe(meta)}: give a config with SSLResNet "
                f"(e.g. {SMALL_CONFIG}) or leave config empty to get it")
        return
    if backbone.type != "SSLResNet":
        raise ConfigError(f"segmentation: {config}: backbone type {backbone.type!r}; extracted ResNets load "
                          f"into mmseg's 'ResNet' (ResNet-50) or 'SSLResNet'")
    backbone.update(depth=depth, base_channels=width, stem=stem)
    expansion = ResNet.arch_settings[depth][0].expansion
    for head in _heads(cfg):
        index = head["in_index"]
        channels = [width * 2 ** i * expansion for i in (index if isinstance(index, (list, tuple)) else [index])]
        head["in_channels"] = channels if isinstance(index, (list, tuple)) else channels[0]
        if head.get("num_convs", 2) == 0:  # FCN's classifier alone: its input is the head's width
            head["channels"] = head["in_channels"]


def _heads(cfg: Config) -> list:
    aux = cfg.model.get("auxiliary_head") or []
    return [cfg.model.decode_head, *(aux if isinstance(aux, list) else [aux])]


def _resize_recipe(cfg: Config, pipelines: list[list], size: int) -> None:
    """Train on `size` x `size` crops: every crop, pad and slide window set to it, resize scales in proportion."""
    old = cfg.model.data_preprocessor.get("size")
    if not old:
        raise ConfigError("segmentation: image_size needs model.data_preprocessor.size (the crop) in the config")
    f = size / old[0]

    def scaled(v):
        return tuple(max(1, round(x * f)) for x in v)

    for pipeline in pipelines:
        for t in pipeline:
            if t["type"] in ("RandomResize", "Resize") and "scale" in t:
                t["scale"] = scaled(t["scale"])
            elif t["type"] == "RandomCrop":
                t["crop_size"] = (size, size)
            elif t["type"] == "Pad" and "size" in t:
                t["size"] = (size, size)
    cfg.model.data_preprocessor.size = (size, size)
    if cfg.model.test_cfg.get("mode") == "slide":
        cfg.model.test_cfg.update(crop_size=(size, size), stride=scaled(cfg.model.test_cfg.stride))


def build_config(config: str, cfg_options: list[str], meta: dict, weights: str, layout: dict, root: Path,
                 iters: int, image_size: int) -> Config:
    """The runnable config: the config file, fitted to the backbone, the dataset and the schedule asked for.
    `model.backbone.init_cfg` is left for `run_one` (pretrained or random)."""
    cfg = load_config(config, cfg_options)
    check_backbone(cfg, meta, config, weights)
    pipelines = [_pipeline(cfg.train_dataloader.dataset), _pipeline(cfg.test_dataloader.dataset)]
    if image_size:
        _resize_recipe(cfg, pipelines, image_size)
    cfg.train_dataloader.dataset = _datasets(layout, "train", root, pipelines[0])
    cfg.test_dataloader.dataset = _datasets(layout, "test", root, pipelines[1])
    cfg.train_dataloader.batch_size = cfg.get("auto_scale_lr", {}).get("base_batch_size",
                                                                        cfg.train_dataloader.batch_size)
    for head in _heads(cfg):
        head["num_classes"] = len(layout["classes"])
    cfg.model.pop("pretrained", None)

    planned = cfg.train_cfg.max_iters
    iters = iters or planned
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=iters)
    for sched in cfg.param_scheduler:  # the poly decay over the iterations actually run
        for key in ("begin", "end"):
            if key in sched:
                sched[key] = round(sched[key] * iters / planned)
    # test once at the end, keep no checkpoints, draw nothing, log only warnings (a hook prints progress)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.default_hooks.pop("visualization", None)
    cfg.default_hooks.checkpoint = None
    cfg.log_level = "WARNING"
    cfg.randomness = dict(seed=0)
    cfg.load_from, cfg.resume, cfg.launcher = None, False, "none"
    return cfg


class _Progress(Hook):
    """A line on stdout about ten times a run: the engine's own logging is off."""

    def __init__(self, name: str, iters: int):
        self.name, self.iters, self.every, self.start = name, iters, max(1, iters // 10), time.time()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        i = runner.iter + 1
        if i % self.every == 0 or i == self.iters:
            loss = float(outputs["loss"]) if outputs and "loss" in outputs else float("nan")
            print(f"segmentation {self.name}: iter {i}/{self.iters} loss {loss:.3f} "
                  f"({time.time() - self.start:.0f} s)", flush=True)


def with_init(cfg: Config, checkpoint: str | None) -> Config:
    """The config whose backbone starts from `checkpoint` (extract's backbone.pth), or None: random init."""
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.init_cfg = dict(type="Pretrained", checkpoint=checkpoint) if checkpoint else None
    return cfg


def run_one(cfg: Config, name: str, checkpoint: str | None, work_dir: Path) -> dict:
    """Train from `checkpoint` (None: random init) and test; mIoU / aAcc / mAcc in %."""
    from mmengine.runner import Runner

    cfg = with_init(cfg, checkpoint)
    cfg.work_dir = str(work_dir / name)
    cfg.experiment_name = f"segmentation-{name}-{uuid.uuid4().hex[:8]}"  # one engine logger per run
    runner = Runner.from_cfg(cfg)
    runner.register_hook(_Progress(name, cfg.train_cfg.max_iters), priority="LOW")
    runner.train()
    metrics = runner.test()
    result = {k: round(float(metrics[k]), 2) for k in METRICS}
    print(f"segmentation {name}: " + "  ".join(f"{k} {v:.2f}" for k, v in result.items()), flush=True)
    return result


def run_segmentation(dataset: str, backbone: str, protocol: str = "voc12aug", config: str = "",
                     iters: int = 0, image_size: int = 0, baseline: bool = True,
                     cfg_options: list[str] | None = None) -> dict:
    """The benchmark's metrics (the stage's metrics.json): pretrained, and random init when `baseline`."""
    from .mm_models import register

    if protocol not in PROTOCOL_LAYOUTS:
        raise ConfigError(f"segmentation: protocol {protocol!r} is not one of {sorted(PROTOCOL_LAYOUTS)}")
    if iters < 0 or image_size < 0:
        raise ConfigError(f"segmentation: iters ({iters}) and image_size ({image_size}) must be >= 0")
    register()
    start = time.time()
    meta = load_backbone_meta(backbone)
    config = config or default_config(protocol, meta)
    layout = read_layout(dataset, protocol)
    with tempfile.TemporaryDirectory(prefix="ssl-segmentation-") as tmp:
        tmp = Path(tmp)
        root = storage.local_dir(dataset, tmp)  # mmseg reads local files
        _check_files(root, layout)
        cfg = build_config(config, list(cfg_options or []), meta, backbone, layout, root, iters, image_size)
        weights = storage.download(storage.join(backbone, "backbone.pth"), tmp / "backbone.pth")
        results = {"pretrained": run_one(cfg, "pretrained", str(weights), tmp)}
        if baseline:
            results["random_init"] = run_one(cfg, "random_init", None, tmp)
    return {"protocol": "segmentation", "benchmark": protocol, "config": config,
            "iters": cfg.train_cfg.max_iters, "image_size": (cfg.model.data_preprocessor.get("size") or [0])[0],
            "dataset": layout["dataset_name"], "classes": list(layout["classes"]), "results": results,
            "num_train": sum(p.get("num_images", 0) for p in _parts(layout["train"])),
            "num_test": sum(p.get("num_images", 0) for p in _parts(layout["test"])),
            "backbone_sha256": meta.get("sha256"), "algorithm": meta.get("algorithm"),
            "seconds": round(time.time() - start, 1)}
