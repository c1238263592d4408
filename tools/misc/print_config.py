"""Print a config with its `_base_` chain and overrides resolved (the seed's tool of the same name).

    python tools/misc/print_config.py CONFIG [--cfg-options KEY=VALUE ...]
"""
import argparse
import sys

from ssl_lib.config import config_arguments, load_config
from ssl_lib.errors import exit_code


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args = config_arguments(parser).parse_args(argv)
    return exit_code(lambda: print(load_config(args.config, args.cfg_options).pretty_text))


if __name__ == "__main__":
    sys.exit(main())
