"""Seed-style Python configs on mmengine's Config: `_base_`, `_delete_`, `{{_base_.x}}`,
`custom_imports`, and `--cfg-options a.b.c=value` overrides with strict parsing."""
from __future__ import annotations

import ast
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from mmengine.config import Config

from . import storage
from .errors import ConfigError

CONFIG_ROOT = Path(__file__).resolve().parent / "configs"


def resolve_config_path(name: str) -> Path:
    """A config given as a path, an s3:// URI (downloaded; it must not use relative `_base_`), or a
    path relative to the shipped `ssl_lib/configs` folder."""
    if storage.is_s3(name):
        local = Path(tempfile.mkdtemp(prefix="ssl-config-")) / Path(name).name
        return storage.download(name, local)
    for candidate in (Path(name), CONFIG_ROOT / name):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"config file not found: {name!r} (looked in the working directory and {CONFIG_ROOT})")


def parse_cfg_option(option: str) -> tuple[str, Any]:
    """Parse one `key.path=value`; the value is a Python literal or, if it is a bare word, a string."""
    key, sep, raw = option.partition("=")
    key = key.strip()
    if not sep or not key or any(not part.isidentifier() and not part.isdigit() for part in key.split(".")):
        raise ConfigError(f"malformed --cfg-options entry {option!r}: expected key.path=value")
    raw = raw.strip()
    if raw == "":
        raise ConfigError(f"malformed --cfg-options entry {option!r}: empty value for {key!r}")
    if raw.lower() in _WORDS:
        return key, _WORDS[raw.lower()]
    try:
        return key, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        if any(ch in raw for ch in "[](){}'\"") or "," in raw:
            # An attempted literal (list, tuple, dict, quoted string) that does not parse.
            raise ConfigError(
                f"malformed --cfg-options value for {key!r}: {raw!r} is not a valid Python literal") from None
        return key, raw


_WORDS = {"true": True, "false": False, "none": None, "null": None}


def load_config(name: str | os.PathLike, cfg_options: Iterable[str] = ()) -> Config:
    """Load a config (with its `_base_` chain and `custom_imports`) and apply overrides."""
    path = resolve_config_path(str(name))
    try:
        cfg = Config.fromfile(str(path), import_custom_modules=True)
    except ConfigError:
        raise
    except ImportError as err:
        raise ConfigError(f"{path}: custom_imports failed: {err}") from err
    except Exception as err:  # mmengine raises plain exceptions for syntax and _base_ problems
        raise ConfigError(f"{path}: cannot load config: {err}") from err
    overrides = dict(parse_cfg_option(opt) for opt in cfg_options)
    for key in overrides:
        _check_override_path(cfg, key)
    if overrides:
        try:
            cfg.merge_from_dict(overrides)
        except (TypeError, KeyError, IndexError) as err:  # mmengine's, e.g. a dict merged into a list
            raise ConfigError(f"--cfg-options {', '.join(cfg_options)}: cannot apply to {path.name}: {err}") from err
    return cfg


def _check_override_path(cfg: Config, key: str) -> None:
    node: Any = cfg
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, (list, tuple)) and part.isdigit():
            if int(part) >= len(node):
                raise ConfigError(f"--cfg-options {key}: index {part} is out of range for {'.'.join(parts[:i])}")
            node = node[int(part)]
        elif hasattr(node, "get"):
            if part not in node:
                return  # a new subtree is allowed, as in the seed
            node = node[part]
        else:
            raise ConfigError(f"--cfg-options {key}: {'.'.join(parts[:i]) or part!r} is not a dict")


def config_arguments(parser):
    """The positional CONFIG and `--cfg-options` that every config-reading command line takes."""
    parser.add_argument("config", help="config file (path or name under ssl_lib/configs)")
    parser.add_argument("--cfg-options", nargs="*", default=[], metavar="KEY=VALUE")
    return parser
