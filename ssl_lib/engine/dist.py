"""Process-group setup from the standard torchrun / PyTorchJob environment.

torchrun and the Kubeflow Training Operator both set MASTER_ADDR, MASTER_PORT, WORLD_SIZE and
RANK (torchrun also LOCAL_RANK); one code path serves both. The backend is NCCL on GPUs and gloo on
CPUs unless SSL_DIST_BACKEND says otherwise.
"""
from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist


def init_dist() -> torch.device:
    """Join the process group when WORLD_SIZE > 1 and return this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and os.environ.get("SSL_DEVICE", "") != "cpu"
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        backend = os.environ.get("SSL_DIST_BACKEND") or ("nccl" if use_cuda else "gloo")
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=30),
                                device_id=device if use_cuda else None)
    return device


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def barrier() -> None:
    if get_world_size() > 1:
        dist.barrier()


def all_gather_object(obj) -> list:
    """`obj` of every process, in rank order (`[obj]` without a process group)."""
    if get_world_size() == 1:
        return [obj]
    out = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
