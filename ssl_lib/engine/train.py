"""The training entry point every launcher runs: `python -m ssl_lib.engine.train` (also under
torchrun or as a PyTorchJob replica; the process group comes from the environment)."""
from __future__ import annotations

import argparse
import os
import sys

from ..config import load_config
from ..errors import exit_code
from . import validate
from .runner import build_runner


def train(config: str, dataset: str, work_dir: str, cfg_options: list[str] = (), deterministic: bool = False) -> dict:
    import ssl_lib.data  # noqa: F401  (registers data sources, datasets and transforms)
    import ssl_lib.engine.hooks  # noqa: F401
    import ssl_lib.models  # noqa: F401

    cfg = load_config(config, cfg_options)
    # Every problem of the config at once, before a dataset is read or a model built.
    validate.check(cfg, world_size=int(os.environ.get("WORLD_SIZE", "1")))
    if deterministic:
        cfg.deterministic = True
    return build_runner(cfg, dataset, work_dir).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True, help="config file (path or name under ssl_lib/configs)")
    parser.add_argument("--dataset", required=True, help="prepared dataset (folder or s3:// URI)")
    parser.add_argument("--work-dir", required=True, help="checkpoints and logs (folder or s3:// URI)")
    parser.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE")
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic cuDNN kernels (slower; as the seed's flag)")
    args = parser.parse_args(argv)
    return exit_code(lambda: train(args.config, args.dataset, args.work_dir, args.cfg_options, args.deterministic))


if __name__ == "__main__":
    sys.exit(main())
