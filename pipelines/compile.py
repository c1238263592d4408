"""Compile the pipelines to KFP IR YAML: `python -m pipelines.compile [--out pipelines/compiled]`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kfp import compiler

from pipelines.pretrain_and_benchmark import pretrain_and_benchmark

PIPELINES = {"pretrain_and_benchmark": pretrain_and_benchmark}


def compile_all(out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, func in PIPELINES.items():
        path = out_dir / f"{name}.yaml"
        compiler.Compiler().compile(func, str(path))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="pipelines/compiled")
    args = p.parse_args(argv)
    for path in compile_all(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
