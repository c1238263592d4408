"""Run under torchrun: train each config given for one epoch in one 2-process group (gloo, CPU).

    torchrun --standalone --nproc_per_node=2 tests/ddp_train_all.py DATASET WORK_DIR CONFIG...

One process group serves every config, so the cost of starting torchrun is paid once.
"""
import json
import sys
from pathlib import Path

import torch.distributed as torch_dist

from ssl_lib.engine import dist
from ssl_lib.engine.train import train


def main() -> None:
    dataset, work_dir, configs = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    dist.init_dist()
    dist.cleanup = lambda: None  # keep the group for the next config
    for config in configs:
        name = Path(config).stem
        metrics = train(config, dataset, str(work_dir / name), ["runner.max_epochs=1"])
        if torch_dist.get_rank() == 0:
            print("RESULT " + json.dumps(dict(config=name, **metrics)), flush=True)
    torch_dist.destroy_process_group()


if __name__ == "__main__":
    main()
