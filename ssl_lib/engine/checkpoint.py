"""Whole-training-state checkpoints: written atomically, newest found and resumed after a restart.

A checkpoint holds only tensors, numbers, strings, lists and dicts, so that it loads with
`torch.load(weights_only=True)`: loading a checkpoint never runs code.
"""
from __future__ import annotations

import io
import random
import re

import numpy as np
import torch

from .. import storage


def rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": [list(random.getstate()[1]), random.getstate()[0], random.getstate()[2]],
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    keys, version, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))


KINDS = ("epoch", "iter")  # epoch_{N}.pth of the epoch runner, iter_{N}.pth of the iteration runner


def save(state: dict, work_dir: str, number: int, max_keep: int = 0, kind: str = "epoch") -> str:
    """Write `{kind}_{number}.pth` under `work_dir` (local or s3://) atomically; prune old ones."""
    uri = write(state, storage.join(work_dir, f"{kind}_{number}.pth"))
    if max_keep > 0:
        for old in list_checkpoints(work_dir, kind)[:-max_keep]:
            storage.remove(storage.join(work_dir, f"{kind}_{old}.pth"))
    return uri


def write(state: dict, uri: str) -> str:
    buf = io.BytesIO()
    torch.save(state, buf)
    storage.write_bytes(uri, buf.getvalue())
    return uri


def list_checkpoints(work_dir: str, kind: str = "epoch") -> list[int]:
    """The N of every `{kind}_{N}.pth` in `work_dir`, ascending."""
    pattern = re.compile(rf"^{kind}_(\d+)\.pth$")
    return sorted(int(m.group(1)) for m in map(pattern.match, storage.listdir(work_dir)) if m)


def list_epochs(work_dir: str) -> list[int]:
    return list_checkpoints(work_dir, "epoch")


def newest(work_dir: str, kind: str | None = None) -> str | None:
    """The newest `{kind}_{N}.pth` of `work_dir`; without `kind`, of either runner (a work dir holds
    one runner's checkpoints: its config and dataset key it)."""
    for k in (kind,) if kind else KINDS:
        numbers = list_checkpoints(work_dir, k)
        if numbers:
            return storage.join(work_dir, f"{k}_{numbers[-1]}.pth")
    return None


def load(uri: str, map_location="cpu") -> dict:
    return torch.load(io.BytesIO(storage.read_bytes(uri)), map_location=map_location, weights_only=True)
