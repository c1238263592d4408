"""Print a config with its `_base_` chain and overrides resolved (the seed's tool of the same name).

    python tools/misc/print_config.py CONFIG [--cfg-options KEY=VALUE ...]
"""
import argparse
import sys

from ssl_lib.config import load_config
from ssl_lib.errors import SSLError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--cfg-options", nargs="*", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    try:
        print(load_config(args.config, args.cfg_options).pretty_text)
    except SSLError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
