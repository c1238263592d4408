"""Print a config with its `_base_` chain and overrides resolved (the seed's tool of the same name).
With --validate, check it as the pretrain stage does instead: every problem, one per line, and exit
code 2; "config OK" and 0 when there is none.

    python tools/misc/print_config.py CONFIG [--cfg-options KEY=VALUE ...] [--validate [--world-size N]]
"""
import argparse
import sys

from ssl_lib.config import config_arguments, load_config
from ssl_lib.errors import exit_code


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    config_arguments(parser)
    parser.add_argument("--validate", action="store_true", help="check the config instead of printing it")
    parser.add_argument("--world-size", type=int, default=1,
                        help="processes it will train on, for rules on the global batch (default 1)")
    args = parser.parse_args(argv)

    def work() -> None:
        cfg = load_config(args.config, args.cfg_options)
        if not args.validate:
            print(cfg.pretty_text)
            return
        from ssl_lib.engine import validate

        validate.check(cfg, world_size=args.world_size)
        print("config OK")

    return exit_code(work)


if __name__ == "__main__":
    sys.exit(main())
