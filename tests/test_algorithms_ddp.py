"""Every algorithm trains under 2-process DDP (torchrun, gloo): one torchrun for all tiny configs."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import torch

import ssl_lib.models  # noqa: F401  (registers every algorithm)
from ssl_lib.registry import ALGORITHMS

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIGS = sorted((REPO / "tests" / "configs").glob("*_fmnist.py"))


def test_every_algorithm_trains_under_two_process_ddp(fmnist_tiny, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(REPO / "tests" / "ddp_train_all.py"), fmnist_tiny, str(tmp_path), *map(str, TINY_CONFIGS)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    results = {r["config"]: r for r in (json.loads(line[len("RESULT "):]) for line in proc.stdout.splitlines()
                                        if line.startswith("RESULT "))}
    assert sorted(results) == sorted(c.stem for c in TINY_CONFIGS)
    trained = set()
    for name, result in results.items():
        assert result["world_size"] == 2 and result["iterations"] == 2, name  # 64 images / (2 x 16)
        assert math.isfinite(result["final_loss"]), name
        state = torch.load(tmp_path / name / "epoch_1.pth", weights_only=True)
        assert state["meta"]["world_size"] == 2 and len(state["rng"]) == 2
        trained.add(state["meta"]["algorithm"])
    assert trained == set(ALGORITHMS.module_dict), "an algorithm has no tiny config under tests/configs"
