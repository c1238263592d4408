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

_EPOCH_FILE = re.compile(r"^epoch_(\d+)\.pth$")


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


def save(state: dict, work_dir: str, epoch: int, max_keep: int = 0) -> str:
    """Write `epoch_{epoch}.pth` under `work_dir` (local or s3://) atomically; prune old ones."""
    buf = io.BytesIO()
    torch.save(state, buf)
    uri = storage.join(work_dir, f"epoch_{epoch}.pth")
    storage.write_bytes(uri, buf.getvalue())
    if max_keep > 0:
        for old in list_epochs(work_dir)[:-max_keep]:
            storage.remove(storage.join(work_dir, f"epoch_{old}.pth"))
    return uri


def list_epochs(work_dir: str) -> list[int]:
    epochs = []
    for name in storage.listdir(work_dir):
        match = _EPOCH_FILE.match(name)
        if match:
            epochs.append(int(match.group(1)))
    return sorted(epochs)


def newest(work_dir: str) -> str | None:
    epochs = list_epochs(work_dir)
    return storage.join(work_dir, f"epoch_{epochs[-1]}.pth") if epochs else None


def load(uri: str, map_location="cpu") -> dict:
    return torch.load(io.BytesIO(storage.read_bytes(uri)), map_location=map_location, weights_only=True)
