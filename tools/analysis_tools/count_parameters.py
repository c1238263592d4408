"""Count the parameters of the algorithm a config builds (the seed's tool of the same name).

    python tools/analysis_tools/count_parameters.py CONFIG [--cfg-options KEY=VALUE ...]
"""
import argparse
import sys

from ssl_lib.config import load_config
from ssl_lib.errors import SSLError
from ssl_lib.model_tools import count_parameters


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--cfg-options", nargs="*", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    try:
        counts = count_parameters(load_config(args.config, args.cfg_options))
    except SSLError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for name, n in counts.items():
        print(f"{name:10s} {n:>13,d}  ({n / 1e6:.2f} M)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
