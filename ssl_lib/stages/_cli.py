"""What every stage CLI shares: one `error:` line and exit 2 for bad input, metrics JSON on success."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

from ..errors import SSLError


def run_cli(parser: argparse.ArgumentParser, stage: Callable[..., dict], argv: list[str] | None = None) -> int:
    args = vars(parser.parse_args(argv))
    try:
        metrics = stage(**args)
    except SSLError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(metrics, indent=2, default=str))
    return 0
