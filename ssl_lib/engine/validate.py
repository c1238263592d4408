"""Config validation before anything heavy: one pass over a resolved pretraining config that reports
every wrong type, range, name and contradiction it finds, each as `<key.path> = <value>: <what is
wrong>`, before a dataset is read or a model built.

Paths are written the way `--cfg-options` takes them (`custom_hooks.0.priority`), so a fix can be
passed back the same way. Names are checked against the registries and keyword arguments against
the `__init__` signature of the class they go to, so a new algorithm or hook is covered as soon as
it is registered. What needs the data itself (the split's size against a memory bank or a number of
clusters) stays in the algorithms' `check_data` and the hooks' `before_run`.
"""
from __future__ import annotations

import difflib
import inspect
import re
from typing import Any

import torch

from .. import data as _data  # noqa: F401  (registers data sources, datasets and transforms)
from .. import models as _models  # noqa: F401  (registers backbones, necks, heads, memories, algorithms)
from ..errors import ConfigError
from ..models.algorithms import MoCo
from ..models.backbones import NORM_LAYERS, ResNet
from ..registry import ALGORITHMS, BACKBONES, DATASETS, DATASOURCES, HEADS, HOOKS, MEMORIES, NECKS, PIPELINES
from . import schedules
from ..models.clustering import CLUSTERINGS
from .hooks import PRIORITIES, Hook, get_priority
from .hooks.deepcluster_hook import EXTRACTOR_KEYS
from .hooks.eval_hook import EVALUATION_KEYS, check_workflow, has_val_phase
from .optimizer import _HOOK_KEYS, CONSTRUCTORS, MODEL_TYPES, OPTIMIZER_HOOKS, OPTIMIZERS
from .runner import RUNNERS

# Top-level keys the engine reads.
ENGINE_KEYS = ("model", "data", "optimizer", "optimizer_config", "fp16", "lr_config", "momentum_config",
               "runner", "workflow", "evaluation", "checkpoint_config", "log_config", "custom_hooks", "seed",
               "deterministic", "cudnn_benchmark", "resume_from", "custom_imports")
# Variables the seed's configs define only to build the keys above (`_`-prefixed names are too).
HELPER_KEYS = ("data_source", "dataset_type", "img_norm_cfg", "num_classes", "num_crops", "lr", "update_interval",
               "color_jitter", "color_distort_strength", "prefetch")
_HELPER = re.compile(r"^_|_pipeline\d*$")

# The dataset each pretext algorithm trains on (its labels come from it), and the algorithms that
# train on cluster labels, which only DeepClusterHook gives.
_DATASET_OF = {"RelativeLoc": "RelativeLocDataset", "RotationPred": "RotationPredDataset",
               "DeepCluster": "DeepClusterDataset", "ODC": "DeepClusterDataset"}
_NEEDS_NEGATIVES = ("SimCLR", "BarlowTwins")  # statistics over the global batch
# Parameter-group options that are not optimizer arguments: LARS's exclusion, SimSiamHook's fixed LR.
_GROUP_FLAGS = ("lars_exclude", "fix_lr")
_MODULE_KEYS = {"backbone": BACKBONES, "neck": NECKS, "head": HEADS, "memory_bank": MEMORIES, "predictor": NECKS}

# The fields of every policy together: a field of another policy than the one set is ignored, so that
# --cfg-options can switch policies (it cannot delete keys).
_CYCLIC = ("target_ratio", "cyclic_times", "step_ratio_up", "anneal_strategy", "gamma")
_LR_KEYS = ("policy", "by_epoch", "warmup", "warmup_iters", "warmup_ratio", "warmup_by_epoch", "min_lr",
            "min_lr_ratio", "step", "gamma", "power", *_CYCLIC)
_MOMENTUM_KEYS = ("policy", "by_epoch", "min_momentum", "min_momentum_ratio", *_CYCLIC)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()


def _short(value: Any, width: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


class _Report(list):
    def add(self, path: str, value: Any, what: str) -> None:
        self.append(f"{path} = {_short(value)}: {what}")


def _suggest(name: Any, known) -> str:
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(known))}"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(r: _Report, path: str, value: Any, minimum: int = 1) -> bool:
    if _is_int(value) and value >= minimum:
        return True
    r.add(path, value, "must be a positive int" if minimum == 1 else f"must be an int >= {minimum}")
    return False


def _number(r: _Report, path: str, value: Any, what: str, ok) -> bool:
    if _is_number(value) and ok(value):
        return True
    r.add(path, value, f"must be a number {what}")
    return False


def _bool(r: _Report, path: str, d: dict, key: str) -> None:
    if key in d and not isinstance(d[key], bool):
        r.add(f"{path}.{key}", d[key], "must be True or False")


def _dict(r: _Report, path: str, value: Any, what: str = "a dict") -> bool:
    if isinstance(value, dict):
        return True
    r.add(path, value, f"must be {what}")
    return False


def _keys(r: _Report, path: str, d: dict, allowed) -> None:
    for key in d:
        if key not in allowed:
            r.add(f"{path}.{key}", d[key], f"not a key of {path}{_suggest(key, allowed)}")


def _signature(r: _Report, path: str, d: dict, cls: type, given: tuple = (), skip: tuple = ()) -> None:
    """`d`'s keys against `cls.__init__`'s arguments: unknown ones (with the closest name) and
    missing required ones. `given` are filled in by the engine; `skip` are not the class's."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # a C extension without a signature: nothing to compare
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    names = [n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY)]
    required = {n for n in names if params[n].default is inspect.Parameter.empty} - set(given)
    guessed = set()
    for key in d:
        if key == "type" or key in skip or key in names:
            continue
        close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
        if close:
            guessed.add(close[0])
            r.add(f"{path}.{key}", d[key], f"{cls.__name__} takes no {key!r}; did you mean {close[0]!r}?")
        else:
            r.add(f"{path}.{key}", d[key], f"{cls.__name__} takes no {key!r}; it takes {', '.join(names) or 'nothing'}")
    for name in sorted(required - set(d) - guessed):
        r.add(f"{path}.{name}", MISSING, f"required by {cls.__name__}")


def _typed(r: _Report, path: str, d: Any, registry, given: tuple = (), skip: tuple = ()) -> type | None:
    """A `dict(type=...)` config: its type registered in `registry`, its keys taken by the class."""
    if not _dict(r, path, d, f"a dict with a 'type' from the {registry.name} registry"):
        return None
    name = d.get("type", MISSING)
    # mmengine's Registry.get also imports a dotted path; only a class is a type here
    cls = registry.get(name) if isinstance(name, str) else None
    if not inspect.isclass(cls):
        r.add(f"{path}.type", name, f"not a registered {registry.name}{_suggest(name, registry.module_dict)}")
        return None
    _signature(r, path, d, cls, given, skip)
    return cls


# -- sections -------------------------------------------------------------------------------------
def _top_level(r: _Report, cfg: dict) -> None:
    for key, value in cfg.items():
        if key in ENGINE_KEYS or key in HELPER_KEYS or _HELPER.search(key):
            continue
        close = difflib.get_close_matches(key, ENGINE_KEYS, n=1, cutoff=0.6)
        r.add(key, value, f"unknown top-level key; did you mean {close[0]!r}?" if close else
              "unknown top-level key: the engine does not read it (start a config's own helper variables with '_')")


def _runner_section(r: _Report, cfg: dict) -> None:
    runner = cfg.get("runner", MISSING)
    if not _dict(r, "runner", runner, "dict(type='EpochBasedRunner', max_epochs=N)"):
        return
    kind = runner.get("type", "EpochBasedRunner")
    _keys(r, "runner", runner, ("type", "max_epochs", "max_iters"))
    if not (isinstance(kind, str) and kind in RUNNERS):
        r.add("runner.type", kind, f"not a runner{_suggest(kind, RUNNERS)}")
        return
    want, other = ("max_iters", "max_epochs") if kind == "IterBasedRunner" else ("max_epochs", "max_iters")
    _int(r, f"runner.{want}", runner.get(want, MISSING))
    if runner.get(other) is not None:  # a base config's other length is dropped by `_delete_` or None
        r.add(f"runner.{other}", runner[other], f"{kind} counts {want.split('_')[1]}: set runner.{want} only "
              f"(runner.{other}=None drops a base config's)")


def _pipeline(r: _Report, path: str, transforms: Any) -> None:
    if not isinstance(transforms, (list, tuple)):
        r.add(path, transforms, "must be a list of transform dicts")
        return
    for i, t in enumerate(transforms):
        cls = _typed(r, f"{path}.{i}", t, PIPELINES)
        if cls is not None and isinstance(t.get("transforms"), (list, tuple)):
            _pipeline(r, f"{path}.{i}.transforms", t["transforms"])


def _dataset(r: _Report, path: str, d: Any) -> None:
    if _typed(r, path, d, DATASETS) is None:
        return
    source = d.get("data_source", MISSING)
    # The engine hands the data source the --dataset path as `root`: only those that take one fit.
    rooted = [n for n, c in DATASOURCES.module_dict.items() if "root" in inspect.signature(c).parameters]
    kind = source.get("type") if isinstance(source, dict) else None
    if isinstance(kind, str) and kind in DATASOURCES.module_dict and kind not in rooted:
        r.add(f"{path}.data_source.type", source["type"], f"takes no `root`, where the engine puts the --dataset "
              f"path; use {' or '.join(rooted)}")
    else:
        _typed(r, f"{path}.data_source", source, DATASOURCES, given=("root",))
    for key in ("pipeline", "format_pipeline"):
        if key in d:
            _pipeline(r, f"{path}.{key}", d[key])
    pipelines = d.get("pipelines")
    if pipelines is not None:
        if not isinstance(pipelines, (list, tuple)):
            r.add(f"{path}.pipelines", pipelines, "must be a list of pipelines (lists of transform dicts)")
        else:
            for i, p in enumerate(pipelines):
                _pipeline(r, f"{path}.pipelines.{i}", p)
    views = d.get("num_views")
    if views is not None:
        if not (isinstance(views, (list, tuple)) and views and all(_is_int(n) and n >= 1 for n in views)):
            r.add(f"{path}.num_views", views, "must be a non-empty list of positive ints")
        elif isinstance(pipelines, (list, tuple)) and len(pipelines) != len(views):
            r.add(f"{path}.num_views", views, f"needs one pipeline per entry; {path}.pipelines has {len(pipelines)}")


def _data_section(r: _Report, cfg: dict) -> None:
    data = cfg.get("data", MISSING)
    if not _dict(r, "data", data):
        return
    _keys(r, "data", data, ("samples_per_gpu", "workers_per_gpu", "drop_last", "train", "val"))
    _int(r, "data.samples_per_gpu", data.get("samples_per_gpu", MISSING))
    _int(r, "data.workers_per_gpu", data.get("workers_per_gpu", 0), minimum=0)
    _bool(r, "data", data, "drop_last")
    train, model = data.get("train", MISSING), cfg.get("model")
    algorithm = model.get("type") if isinstance(model, dict) else None
    wanted = _DATASET_OF.get(algorithm) if isinstance(algorithm, str) else None
    if wanted and isinstance(train, dict) and train.get("type") != wanted:
        r.add("data.train.type", train.get("type", MISSING), f"{algorithm} trains on {wanted}'s samples and labels")
    else:
        _dataset(r, "data.train", train)
    if "val" in data:
        _dataset(r, "data.val", data["val"])


def _module(r: _Report, path: str, d: Any, registry) -> None:
    """A backbone / neck / head / memory and the modules inside it (a head's predictor)."""
    cls = _typed(r, path, d, registry)
    if cls is None:
        return
    for key, sub in _MODULE_KEYS.items():
        if isinstance(d.get(key), dict):
            _module(r, f"{path}.{key}", d[key], sub)
    norm = d.get("norm_cfg")
    if issubclass(cls, ResNet):
        if "depth" in d and not (_is_int(d["depth"]) and d["depth"] in ResNet.arch_settings):
            r.add(f"{path}.depth", d["depth"], f"not a ResNet depth; use one of {sorted(ResNet.arch_settings)}")
        if isinstance(norm, dict) and not (isinstance(norm.get("type"), str) and norm["type"] in NORM_LAYERS):
            r.add(f"{path}.norm_cfg.type", norm.get("type", MISSING),
                  f"not a 2d norm layer{_suggest(norm.get('type'), NORM_LAYERS)}")


def _hook_dicts(cfg: dict, kind: str) -> list[tuple[int, dict]]:
    hooks = cfg.get("custom_hooks")
    hooks = hooks if isinstance(hooks, (list, tuple)) else []
    return [(i, h) for i, h in enumerate(hooks) if isinstance(h, dict) and h.get("type") == kind]


def _ints(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(_is_int(v) for v in value)


def _default(cls: type, name: str) -> Any:
    param = inspect.signature(cls).parameters.get(name)
    return MISSING if param is None or param.default is inspect.Parameter.empty else param.default


def _model_section(r: _Report, cfg: dict, world_size: int) -> None:
    model = cfg.get("model", MISSING)
    cls = _typed(r, "model", model, ALGORITHMS)
    if cls is None:
        return
    for key, registry in _MODULE_KEYS.items():
        if isinstance(model.get(key), dict):
            _module(r, f"model.{key}", model[key], registry)
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    train = data.get("train") if isinstance(data.get("train"), dict) else {}
    batch = data.get("samples_per_gpu")
    global_batch = batch * world_size if _is_int(batch) and batch > 0 else None
    name = model["type"]
    views = train.get("num_views")
    views = sum(views) if _ints(views) else None

    if cls.num_views is not None and views is not None and views != cls.num_views:
        r.add("data.train.num_views", train["num_views"], f"{name} needs {cls.num_views} views per sample, the "
              f"pipeline gives {views}; set data.train.num_views to a list summing to {cls.num_views}")
    if issubclass(cls, MoCo):
        queue_len = model.get("queue_len", _default(cls, "queue_len"))
        if _int(r, "model.queue_len", queue_len) and global_batch and queue_len % global_batch:
            # the queue is filled in whole global batches
            r.add("model.queue_len", queue_len, f"not divisible by the global batch size {global_batch} "
                  f"(data.samples_per_gpu={batch} x {world_size} process(es)); pick a multiple of it, e.g. "
                  f"{global_batch * max(1, queue_len // global_batch)}")
        feat_dim, neck = model.get("feat_dim", _default(cls, "feat_dim")), model.get("neck")
        out = neck.get("out_channels") if isinstance(neck, dict) else None
        if _int(r, "model.feat_dim", feat_dim) and _is_int(out) and out != feat_dim:
            r.add("model.feat_dim", feat_dim,
                  f"the neck outputs {out} (model.neck.out_channels); set model.feat_dim={out}")
    if name in _NEEDS_NEGATIVES and global_batch is not None and global_batch < 2:
        r.add("data.samples_per_gpu", batch, f"{name} compares the samples of a batch: a global batch of "
              f"{global_batch} ({world_size} process(es)) has nothing to compare; use >= 2 in all")
    head = model.get("head") if isinstance(model.get("head"), dict) else {}
    if head.get("type") == "SwAVHead":
        _swav(r, cfg, head, views, batch)
    if name in ("DeepCluster", "ODC"):
        hooks = [h for _, h in _hook_dicts(cfg, "DeepClusterHook")]
        if not hooks:
            r.add("custom_hooks", cfg.get("custom_hooks", MISSING), f"{name} trains on cluster labels: add a "
                  "DeepClusterHook" + (" with init_memory=True" if name == "ODC" else ""))
        elif name == "ODC" and not any(h.get("init_memory") for h in hooks):
            r.add("custom_hooks", cfg["custom_hooks"],
                  "ODC's memory starts empty: its DeepClusterHook needs init_memory=True")


def _swav(r: _Report, cfg: dict, head: dict, views: int | None, batch: Any) -> None:
    head_cls = HEADS.get("SwAVHead")
    crops = head.get("num_crops", _default(head_cls, "num_crops"))
    assign = head.get("crops_for_assign", _default(head_cls, "crops_for_assign"))
    if views is not None and _ints(crops) and views != sum(crops):
        r.add("data.train.num_views", cfg["data"]["train"]["num_views"], f"gives {views} views per sample but "
              f"model.head.num_crops={list(crops)} sums to {sum(crops)}; set both from one num_crops list")
    for i, hook in _hook_dicts(cfg, "SwAVHook"):
        if "batch_size" in hook and hook["batch_size"] != batch:
            r.add(f"custom_hooks.{i}.batch_size", hook["batch_size"], f"data.samples_per_gpu is {batch!r}; set it "
                  "from data.samples_per_gpu")
        if "feat_dim" in head and hook.get("feat_dim", _default(HOOKS.get("SwAVHook"), "feat_dim")) != head["feat_dim"]:
            r.add(f"custom_hooks.{i}.feat_dim", hook.get("feat_dim", MISSING),
                  f"model.head.feat_dim is {head['feat_dim']}")
        given = hook.get("crops_for_assign", assign)
        if _ints(assign) and not (_ints(given) and list(given) == list(assign)):
            r.add(f"custom_hooks.{i}.crops_for_assign", hook["crops_for_assign"],
                  f"differs from model.head.crops_for_assign={list(assign)}")


def _optimizer_class(name: Any) -> type | None:
    cls = OPTIMIZERS.get(name) or getattr(torch.optim, name, None) if isinstance(name, str) else None
    ok = isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer
    return cls if ok else None


def _optimizer_section(r: _Report, cfg: dict) -> None:
    opt = cfg.get("optimizer", MISSING)
    if not _dict(r, "optimizer", opt, "a dict such as dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4)"):
        return
    name = opt.get("type", "SGD")
    cls = _optimizer_class(name)
    if cls is None:
        known = [n for n in [*OPTIMIZERS, *dir(torch.optim)] if _optimizer_class(n)]
        r.add("optimizer.type", name,
              f"neither a torch.optim optimizer nor one of {sorted(OPTIMIZERS)}{_suggest(name, known)}")
        return
    _signature(r, "optimizer", opt, cls, given=("params",),
               skip=("paramwise_options", "constructor", "layer_decay", "model_type"))
    constructor = opt.get("constructor", "DefaultOptimizerConstructor")
    if constructor not in CONSTRUCTORS:
        r.add("optimizer.constructor", constructor, f"not an optimizer constructor{_suggest(constructor, CONSTRUCTORS)}")
    elif (constructor == "TransformerFinetuneConstructor") != ("layer_decay" in opt):
        r.add("optimizer.constructor", constructor, "TransformerFinetuneConstructor and optimizer.layer_decay go together")
    if "layer_decay" in opt:
        _number(r, "optimizer.layer_decay", opt["layer_decay"], "in (0, 1]", lambda v: 0 < v <= 1)
    if opt.get("model_type", "vit") not in MODEL_TYPES:
        r.add("optimizer.model_type", opt["model_type"], f"layer-wise lr decay knows {', '.join(MODEL_TYPES)}")
    if "lr" in opt:
        _number(r, "optimizer.lr", opt["lr"], "> 0", lambda v: v > 0)
    if "weight_decay" in opt:
        _number(r, "optimizer.weight_decay", opt["weight_decay"], ">= 0", lambda v: v >= 0)
    if "momentum" in opt:
        _number(r, "optimizer.momentum", opt["momentum"], "in [0, 1)", lambda v: 0 <= v < 1)
    paramwise = opt.get("paramwise_options")
    if paramwise is None or not _dict(r, "optimizer.paramwise_options", paramwise, "a dict {name regex: options}"):
        return
    group_keys = [n for n in inspect.signature(cls).parameters if n != "params"] + list(_GROUP_FLAGS)
    for pattern, options in paramwise.items():
        path = f"optimizer.paramwise_options.{pattern}"
        try:
            re.compile(pattern)
        except re.error as err:
            r.add(path, pattern, f"not a regular expression: {err}")
        if not _dict(r, path, options, "a dict of parameter-group options"):
            continue
        for key, value in options.items():
            base = key[:-len("_mult")] if key.endswith("_mult") else key
            if base not in group_keys:
                r.add(f"{path}.{key}", value, f"not an option of {cls.__name__}{_suggest(base, group_keys)}")
            elif key != base and base not in opt:
                r.add(f"{path}.{key}", value, f"multiplies optimizer.{base}, which is not set")
            elif key != base:
                _number(r, f"{path}.{key}", value, ">= 0", lambda v: v >= 0)


def _optimizer_config_section(r: _Report, cfg: dict) -> None:
    oc = cfg.get("optimizer_config")
    if oc is not None and _dict(r, "optimizer_config", oc):
        _keys(r, "optimizer_config", oc, sorted(_HOOK_KEYS))
        if oc.get("type", "OptimizerHook") not in OPTIMIZER_HOOKS:
            r.add("optimizer_config.type", oc["type"], f"not one of {', '.join(OPTIMIZER_HOOKS)}")
        if "update_interval" in oc:
            _int(r, "optimizer_config.update_interval", oc["update_interval"])
        clip = oc.get("grad_clip")
        if clip is not None and _dict(r, "optimizer_config.grad_clip", clip, "None or dict(max_norm=..., norm_type=2)"):
            _signature(r, "optimizer_config.grad_clip", clip, torch.nn.utils.clip_grad_norm_, given=("parameters",))
            if "max_norm" in clip:
                _number(r, "optimizer_config.grad_clip.max_norm", clip["max_norm"], "> 0", lambda v: v > 0)
        frozen = oc.get("frozen_layers_cfg")
        path = "optimizer_config.frozen_layers_cfg"
        if frozen is not None and _dict(r, path, frozen, "a dict {name prefix: iterations}"):
            for prefix, iters in frozen.items():
                _int(r, f"{path}.{prefix}", iters, minimum=0)
    fp16 = cfg.get("fp16")
    if fp16 is not None and _dict(r, "fp16", fp16, "None or dict(loss_scale='dynamic' | number, dtype=...)"):
        _keys(r, "fp16", fp16, ("dtype", "loss_scale"))
        if fp16.get("dtype", "float16") not in ("float16", "bfloat16"):
            r.add("fp16.dtype", fp16["dtype"], "must be 'float16' or 'bfloat16'")
        scale = fp16.get("loss_scale", "dynamic")
        if scale != "dynamic" and not (_is_number(scale) and scale > 0):
            r.add("fp16.loss_scale", scale, "must be 'dynamic' or a positive number")


def _policy(r: _Report, path: str, d: dict, known, default: str | None) -> str | None:
    policy = d.get("policy", default if default is not None else MISSING)
    if isinstance(policy, str) and policy == policy.lower():  # as mmcv: the seed writes 'step', 'poly'
        policy = policy.title()
    if policy in known:
        return policy
    r.add(f"{path}.policy", d.get("policy", MISSING), f"not a policy{_suggest(policy, known)}")
    return None


def _cyclic(r: _Report, path: str, d: dict, cfg: dict) -> None:
    if d.get("by_epoch", False) is not False:
        r.add(f"{path}.by_epoch", d["by_epoch"], "Cyclic counts iterations: set by_epoch=False")
    ratio = d.get("target_ratio")
    if ratio is not None:
        ratios = list(ratio) if isinstance(ratio, (list, tuple)) else [ratio]
        if not (1 <= len(ratios) <= 2 and all(_is_number(x) and x >= 0 for x in ratios)):
            r.add(f"{path}.target_ratio", ratio, "must be a number >= 0 or a pair of them (peak, end)")
    if "gamma" in d:
        _number(r, f"{path}.gamma", d["gamma"], "in (0, 1]", lambda v: 0 < v <= 1)
    runner = cfg.get("runner") if isinstance(cfg.get("runner"), dict) else {}
    if "cyclic_times" in d and _int(r, f"{path}.cyclic_times", d["cyclic_times"]):
        total = runner.get("max_iters") if runner.get("type") == "IterBasedRunner" else None
        if _is_int(total) and total > 0 and d["cyclic_times"] > total:
            r.add(f"{path}.cyclic_times", d["cyclic_times"],
                  f"more cycles than the {total} iterations (runner.max_iters)")
    if "step_ratio_up" in d:
        _number(r, f"{path}.step_ratio_up", d["step_ratio_up"], "in [0, 1)", lambda v: 0 <= v < 1)
    if d.get("anneal_strategy", "cos") not in schedules.ANNEAL_STRATEGIES:
        r.add(f"{path}.anneal_strategy", d["anneal_strategy"],
              f"must be one of {', '.join(schedules.ANNEAL_STRATEGIES)}")


def _lr_section(r: _Report, cfg: dict) -> None:
    lr = cfg.get("lr_config")
    if lr is None or not _dict(r, "lr_config", lr, "a dict(policy=...)"):
        return
    policy = _policy(r, "lr_config", lr, schedules.POLICIES, "Fixed")
    if policy is None:
        return
    _keys(r, "lr_config", lr, _LR_KEYS)
    _bool(r, "lr_config", lr, "by_epoch")
    _bool(r, "lr_config", lr, "warmup_by_epoch")
    if "min_lr" in lr and "min_lr_ratio" in lr:
        r.add("lr_config.min_lr_ratio", lr["min_lr_ratio"], f"lr_config.min_lr={lr['min_lr']!r} is set too; set one")
    for key in ("min_lr", "min_lr_ratio", "power"):
        if key in lr:
            _number(r, f"lr_config.{key}", lr[key], ">= 0", lambda v: v >= 0)
    if "gamma" in lr and policy != "Cyclic":
        _number(r, "lr_config.gamma", lr["gamma"], "> 0", lambda v: v > 0)
    if "step" in lr:
        steps = lr["step"]
        listed = [steps] if _is_int(steps) else steps
        if not (isinstance(listed, (list, tuple)) and listed and all(_is_int(s) and s > 0 for s in listed)
                and list(listed) == sorted(set(listed))):
            r.add("lr_config.step", steps, "must be a positive int or a strictly ascending list of them")
    if policy == "Cyclic":
        _cyclic(r, "lr_config", lr, cfg)
    if lr.get("warmup") is not None:
        if lr["warmup"] not in ("linear", "constant", "exp"):
            r.add("lr_config.warmup", lr["warmup"], "must be None, 'linear', 'constant' or 'exp'")
        if "warmup_iters" in lr:
            _int(r, "lr_config.warmup_iters", lr["warmup_iters"], minimum=0)
        if "warmup_ratio" in lr:
            _number(r, "lr_config.warmup_ratio", lr["warmup_ratio"], "in (0, 1]", lambda v: 0 < v <= 1)


def _momentum_section(r: _Report, cfg: dict) -> None:
    mc = cfg.get("momentum_config")
    if mc is None or not _dict(r, "momentum_config", mc, "a dict(policy=...)"):
        return
    policy = _policy(r, "momentum_config", mc, schedules.MOMENTUM_POLICIES, None)
    if policy is None:
        return
    _keys(r, "momentum_config", mc, _MOMENTUM_KEYS)
    _bool(r, "momentum_config", mc, "by_epoch")
    if "min_momentum" in mc and "min_momentum_ratio" in mc:
        r.add("momentum_config.min_momentum_ratio", mc["min_momentum_ratio"],
              f"momentum_config.min_momentum={mc['min_momentum']!r} is set too; set one")
    elif policy == "CosineAnnealing" and not {"min_momentum", "min_momentum_ratio"} & set(mc):
        r.add("momentum_config.min_momentum", MISSING,
              "CosineAnnealing anneals to min_momentum or min_momentum_ratio; set one")
    for key in ("min_momentum", "min_momentum_ratio"):
        if key in mc:
            _number(r, f"momentum_config.{key}", mc[key], "in [0, 1]", lambda v: 0 <= v <= 1)
    if policy == "Cyclic":
        _cyclic(r, "momentum_config", mc, cfg)
    opt = cfg.get("optimizer") if isinstance(cfg.get("optimizer"), dict) else {}
    cls = _optimizer_class(opt.get("type", "SGD"))
    if cls is not None and not {"momentum", "betas"} & set(inspect.signature(cls).parameters):
        r.add("momentum_config.policy", mc["policy"], f"optimizer {cls.__name__} has neither momentum nor betas")


def _runtime_section(r: _Report, cfg: dict) -> None:
    ckpt = cfg.get("checkpoint_config")
    if ckpt is not None and _dict(r, "checkpoint_config", ckpt, "a dict(interval=N, max_keep_ckpts=K)"):
        _keys(r, "checkpoint_config", ckpt, ("interval", "max_keep_ckpts"))
        if "interval" in ckpt:
            _int(r, "checkpoint_config.interval", ckpt["interval"])
        if "max_keep_ckpts" in ckpt:
            _int(r, "checkpoint_config.max_keep_ckpts", ckpt["max_keep_ckpts"], minimum=0)
    log = cfg.get("log_config")
    if log is not None and _dict(r, "log_config", log, "a dict(interval=N, hooks=[...])"):
        _keys(r, "log_config", log, ("interval", "hooks"))
        if "interval" in log:
            _int(r, "log_config.interval", log["interval"])
        loggers = log.get("hooks")
        if loggers is not None and not isinstance(loggers, (list, tuple)):
            r.add("log_config.hooks", loggers,
                  "must be a list of logger hook dicts such as dict(type='TextLoggerHook')")
        for i, logger in enumerate(loggers if isinstance(loggers, (list, tuple)) else []):
            cls = _typed(r, f"log_config.hooks.{i}", logger, HOOKS, given=("interval",))
            if cls is not None and not issubclass(cls, Hook):
                r.add(f"log_config.hooks.{i}.type", logger["type"], "registered, but not a Hook")
    if "seed" in cfg and not (_is_int(cfg["seed"]) and cfg["seed"] >= 0):
        r.add("seed", cfg["seed"], "must be an int >= 0")
    for key in ("deterministic", "cudnn_benchmark"):
        if key in cfg and not isinstance(cfg[key], bool):
            r.add(key, cfg[key], "must be True or False")
    if cfg.get("resume_from") is not None and not isinstance(cfg["resume_from"], str):
        r.add("resume_from", cfg["resume_from"], "must be None or a checkpoint path / s3:// URI")


def _hooks_section(r: _Report, cfg: dict) -> None:
    hooks = cfg.get("custom_hooks")
    if hooks is None:
        return
    if not isinstance(hooks, (list, tuple)):
        r.add("custom_hooks", hooks, "must be a list of hook dicts")
        return
    for i, hook in enumerate(hooks):
        cls = _typed(r, f"custom_hooks.{i}", hook, HOOKS, skip=("priority",))
        if cls is None:
            continue
        if not issubclass(cls, Hook):
            r.add(f"custom_hooks.{i}.type", hook["type"], "registered, but not a Hook")
        if "priority" in hook:
            try:
                get_priority(hook["priority"])
            except ConfigError:
                r.add(f"custom_hooks.{i}.priority", hook["priority"], "must be an int in 0..100 or one of "
                      + ", ".join(PRIORITIES))
    for i, hook in _hook_dicts(cfg, "DeepClusterHook"):
        path, extractor, clustering = f"custom_hooks.{i}", hook.get("extractor"), hook.get("clustering")
        if isinstance(extractor, dict):
            _keys(r, f"{path}.extractor", extractor, EXTRACTOR_KEYS)
            _pipeline(r, f"{path}.extractor.pipeline", extractor.get("pipeline", MISSING))
        if isinstance(clustering, dict):
            kind = clustering.get("type", MISSING)
            if isinstance(kind, str) and kind in CLUSTERINGS:
                _signature(r, f"{path}.clustering", clustering, CLUSTERINGS[kind])
            else:
                r.add(f"{path}.clustering.type", kind, f"not a clustering{_suggest(kind, CLUSTERINGS)}")


def _evaluation_section(r: _Report, cfg: dict) -> None:
    """`workflow` and `evaluation` as the EvalHook reads them (its EVALUATION_KEYS: key -> checker)."""
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    workflow = cfg.get("workflow", [("train", 1)])
    what = check_workflow(workflow)
    if what:
        r.add("workflow", workflow, what)
    validating = not what and has_val_phase(cfg)
    if validating and "val" not in data:
        r.add("workflow", workflow, "its 'val' phase evaluates on a held-out split: set data.val")
    evaluation = cfg.get("evaluation")
    if evaluation is None or not _dict(r, "evaluation", evaluation, "a dict(interval=N, ...)"):
        return
    if not what and not validating:
        r.add("evaluation", evaluation, "no 'val' phase runs it: set workflow = [('train', 1), ('val', 1)]")
    _keys(r, "evaluation", evaluation, EVALUATION_KEYS)
    for key, value in evaluation.items():
        what = EVALUATION_KEYS[key](value) if key in EVALUATION_KEYS else None
        if what:
            r.add(f"evaluation.{key}", value, what)


def problems(cfg, world_size: int = 1) -> list[str]:
    """Every problem of a resolved pretraining config (mmengine Config or dict) for `world_size`
    processes, one `<key.path> = <value>: <what is wrong>` string each; [] when it is fine."""
    cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    r = _Report()
    _top_level(r, cfg)
    _runner_section(r, cfg)
    _data_section(r, cfg)
    _model_section(r, cfg, world_size)
    _optimizer_section(r, cfg)
    _optimizer_config_section(r, cfg)
    _lr_section(r, cfg)
    _momentum_section(r, cfg)
    _runtime_section(r, cfg)
    _hooks_section(r, cfg)
    _evaluation_section(r, cfg)
    return list(r)


def check(cfg, world_size: int = 1) -> None:
    """Raise one ConfigError listing every problem of `cfg`, one per line."""
    found = problems(cfg, world_size)
    if len(found) == 1:
        raise ConfigError(found[0])
    if found:
        raise ConfigError(f"{len(found)} problems in the config:\n" + "\n".join(f"  {p}" for p in found))
