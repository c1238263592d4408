"""What every stage CLI shares: one `error:` line and exit 2 for bad input, metrics JSON on success."""
from __future__ import annotations

import argparse
import json
from typing import Callable

from ..errors import ConfigError, exit_code


def run_cli(parser: argparse.ArgumentParser, stage: Callable[..., dict], argv: list[str] | None = None) -> int:
    args = vars(parser.parse_args(argv))
    return exit_code(lambda: print(json.dumps(stage(**args), indent=2, default=str)))


def require_gpus(stage: str, gpus: int) -> None:
    """Fail early when the step was given `gpus` GPUs but sees fewer (a CPU node, a CPU image)."""
    import torch

    if gpus and torch.cuda.device_count() < gpus:
        raise ConfigError(f"{stage}: {gpus} GPU(s) requested but {torch.cuda.device_count()} visible "
                          f"(is the step on a GPU node, in the CUDA image?)")
