"""Prepare a checkpoint for release (the seed's tool of the same name): drop the optimizer (and the
loss scaler, RNG and hook state), keep CPU tensors, and put its sha256 prefix in the file name.

    python tools/model_converters/publish_model.py IN.pth OUT.pth    # -> OUT-1a2b3c4d.pth (local or s3://)
"""
import argparse
import sys

from ssl_lib.errors import exit_code
from ssl_lib.model_tools import publish_model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input")
    p.add_argument("output")
    args = p.parse_args(argv)
    return exit_code(lambda: print(publish_model(args.input, args.output)))


if __name__ == "__main__":
    sys.exit(main())
