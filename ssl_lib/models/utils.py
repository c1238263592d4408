"""Distributed helpers for models. Each also runs in a single process, through the same code path."""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


def get_dist_info() -> tuple[int, int]:
    """(rank, world_size), as mmcv names it; (0, 1) when no process group is initialized."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@torch.no_grad()
def concat_all_gather(t: torch.Tensor) -> torch.Tensor:
    """Concatenate `t` from every rank along dim 0 (no gradient flows back through it)."""
    _, world_size = get_dist_info()
    if world_size == 1:
        return t
    gathered = [torch.empty_like(t) for _ in range(world_size)]
    dist.all_gather(gathered, t.contiguous())
    return torch.cat(gathered, dim=0)


@torch.no_grad()
def batch_shuffle_ddp(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffle the global batch across ranks so BN statistics cannot leak which key is positive.

    Every rank must pass the same batch size. Returns this rank's shuffled slice and the
    permutation that `batch_unshuffle_ddp` needs to undo it.
    """
    rank, world_size = get_dist_info()
    x_all = concat_all_gather(x)
    idx_shuffle = torch.randperm(x_all.shape[0], device=x.device)
    if world_size > 1:
        dist.broadcast(idx_shuffle, src=0)  # one permutation for all ranks
    idx_unshuffle = torch.argsort(idx_shuffle)
    return x_all[idx_shuffle.view(world_size, -1)[rank]], idx_unshuffle


@torch.no_grad()
def batch_unshuffle_ddp(x: torch.Tensor, idx_unshuffle: torch.Tensor) -> torch.Tensor:
    """Undo `batch_shuffle_ddp`: this rank gets back the rows of its own original samples."""
    rank, world_size = get_dist_info()
    x_all = concat_all_gather(x)
    return x_all[idx_unshuffle.view(world_size, -1)[rank]]


def revert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every SyncBatchNorm by BatchNorm2d (torch rejects SyncBN on CPU under gloo)."""
    if isinstance(module, nn.SyncBatchNorm):
        bn = nn.BatchNorm2d(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats)
        bn.load_state_dict(module.state_dict())
        bn.train(module.training)
        for p_new, p_old in zip(bn.parameters(), module.parameters()):
            p_new.requires_grad = p_old.requires_grad
        return bn
    for name, child in module.named_children():
        module.add_module(name, revert_sync_batchnorm(child))
    return module
