"""Count the parameters of the algorithm a config builds (the seed's tool of the same name).

    python tools/analysis_tools/count_parameters.py CONFIG [--cfg-options KEY=VALUE ...]
"""
import argparse
import sys

from ssl_lib.config import config_arguments, load_config
from ssl_lib.errors import exit_code
from ssl_lib.model_tools import count_parameters


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args = config_arguments(parser).parse_args(argv)

    def show() -> None:
        for name, n in count_parameters(load_config(args.config, args.cfg_options)).items():
            print(f"{name:10s} {n:>13,d}  ({n / 1e6:.2f} M)")
    return exit_code(show)


if __name__ == "__main__":
    sys.exit(main())
