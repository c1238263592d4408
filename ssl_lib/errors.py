"""Errors meant for people: each names the file, field or value at fault."""
from __future__ import annotations

import sys
from typing import Callable


class SSLError(Exception):
    """Base of every error that a stage CLI reports as one line and exit code 2."""


class ConfigError(SSLError):
    """A config file, a `type`, or a `--cfg-options` value is wrong."""


class DataError(SSLError):
    """A dataset path, manifest or shard is missing or unreadable."""


class StorageError(SSLError):
    """A local path or s3:// URI cannot be read or written."""


class LaunchError(SSLError):
    """A remote training job (PyTorchJob) failed, timed out or was cancelled."""


def exit_code(work: Callable[[], object]) -> int:
    """Run a command line's work: 0 when it succeeds; an SSLError becomes one `error: ...` line on
    stderr and exit code 2 (anything else is a bug and keeps its traceback)."""
    try:
        work()
    except SSLError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
