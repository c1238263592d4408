"""Registries that configs name by `type`, and the one builder that turns a dict into an object."""
from __future__ import annotations

import copy
from typing import Any

from mmengine.registry import Registry

from .errors import ConfigError

BACKBONES = Registry("backbone")
NECKS = Registry("neck")
HEADS = Registry("head")
MEMORIES = Registry("memory")
ALGORITHMS = Registry("algorithm")
DATASOURCES = Registry("datasource")
DATASETS = Registry("dataset")
PIPELINES = Registry("pipeline")
HOOKS = Registry("hook")


def build(cfg: dict | None, registry: Registry, **default_args: Any) -> Any:
    """Build `cfg['type']` from `registry`, with a clear error for an unknown or missing type."""
    if cfg is None:
        return None
    if not isinstance(cfg, dict):
        raise ConfigError(f"expected a dict with a 'type' for the {registry.name} registry, got {cfg!r}")
    args = copy.deepcopy(dict(cfg))
    name = args.pop("type", None)
    if name is None:
        raise ConfigError(f"{registry.name} config has no 'type': {cfg!r}")
    cls = registry.get(name) if isinstance(name, str) else name
    if cls is None:
        known = ", ".join(sorted(registry.module_dict))
        raise ConfigError(f"unknown type {name!r} in the {registry.name} registry; known: {known}")
    for key, value in default_args.items():
        args.setdefault(key, value)
    try:
        return cls(**args)
    except TypeError as err:
        raise ConfigError(f"cannot build {registry.name} {name!r}: {err}") from err
