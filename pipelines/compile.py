"""Compile the pipelines to KFP IR YAML: `python -m pipelines.compile [--out pipelines/compiled]`.

pipelines/compiled/*.yaml are committed golden files: tests/test_cluster_pipelines.py fails when a
fresh compile differs from them. `make golden` rewrites them (with the default image registry).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kfp import compiler

from pipelines.benchmark import benchmark
from pipelines.pretrain_and_benchmark import pretrain_and_benchmark

PIPELINES = {"pretrain_and_benchmark": pretrain_and_benchmark, "benchmark": benchmark}
COMPILED = Path(__file__).resolve().parent / "compiled"


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
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(COMPILED))
    args = p.parse_args(argv)
    for path in compile_all(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
