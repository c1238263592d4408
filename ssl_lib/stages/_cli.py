"""What every stage CLI shares: one `error:` line and exit 2 for bad input, metrics JSON on success."""
from __future__ import annotations

import argparse
import json
from typing import Callable

from ..errors import exit_code


def run_cli(parser: argparse.ArgumentParser, stage: Callable[..., dict], argv: list[str] | None = None) -> int:
    args = vars(parser.parse_args(argv))
    return exit_code(lambda: print(json.dumps(stage(**args), indent=2, default=str)))
