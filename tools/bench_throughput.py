"""Training throughput of a config's algorithm on random 2-view batches, one variant against another
in the same run (this machine is noisy: compare ratios, not seconds across runs).

    python tools/bench_throughput.py [--config C] [--iters 20] [--cfg-options ...]

By default it compares the config as it is with the same config on plain BN.
"""
from __future__ import annotations

import argparse
import time

import torch

import ssl_lib.models  # noqa: F401
from ssl_lib.config import load_config
from ssl_lib.registry import ALGORITHMS, build

DEFAULT = "selfsup/mocov2/mocov2_resnet18-w16_1xb64-coslr-10e_fmnist.py"


def images_per_second(cfg, iters: int, size: int) -> float:
    torch.manual_seed(0)
    model = build(cfg.model, ALGORITHMS).train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    batch = int(cfg.data.samples_per_gpu)
    views = [torch.randn(batch, 3, size, size) for _ in range(2)]
    for i in range(iters + 3):
        if i == 3:  # warm-up iterations are not timed
            start = time.perf_counter()
        loss = model(views, mode="train")["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return batch * iters / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=DEFAULT)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--cfg-options", nargs="*", default=[])
    args = p.parse_args()
    base = load_config(args.config, args.cfg_options)
    plain = load_config(args.config, [*args.cfg_options, "model.backbone.norm_cfg={'_delete_':True,'type':'BN'}"])
    a, b = images_per_second(base, args.iters, args.size), images_per_second(plain, args.iters, args.size)
    print(f"{args.config}: {a:.1f} images/s; with plain BN: {b:.1f} images/s; ratio {a / b:.3f} "
          f"({torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
