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


class BatchNormXd(nn.BatchNorm2d):
    """BatchNorm2d that takes any input of 2 to 5 dims, as SyncBatchNorm does (mmcv's _BatchNormXd):
    what a reverted SyncBN becomes, whether it normalized feature maps or a neck's vectors."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if not 2 <= input.dim() <= 5:
            raise ValueError(f"expected 2D to 5D input (got {input.dim()}D input)")


def revert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every SyncBatchNorm by BatchNormXd, plain BN of any input rank (torch rejects SyncBN on
    CPU under gloo)."""
    if isinstance(module, nn.SyncBatchNorm):
        bn = BatchNormXd(module.num_features, module.eps, module.momentum, module.affine,
                         module.track_running_stats)
        bn.load_state_dict(module.state_dict())
        bn.train(module.training)
        for p_new, p_old in zip(bn.parameters(), module.parameters()):
            p_new.requires_grad = p_old.requires_grad
        return bn
    for name, child in module.named_children():
        module.add_module(name, revert_sync_batchnorm(child))
    return module


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward hands each rank the gradient summed over every rank's loss."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        gathered = [torch.empty_like(t) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, t.contiguous())
        return tuple(gathered)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor) -> torch.Tensor:
        # all_reduce rather than reduce_scatter: gloo has no reduce_scatter.
        grad = torch.stack(grads)
        dist.all_reduce(grad)
        return grad[dist.get_rank()]


def gather_with_grad(t: torch.Tensor) -> torch.Tensor:
    """Concatenate `t` from every rank along dim 0, keeping the gradient to this rank's slice.

    Every rank computes the same loss over the global batch; with DDP's gradient averaging the
    update then equals that of one process holding the whole batch.
    """
    if get_dist_info()[1] == 1:
        return t
    return torch.cat(_GatherWithGrad.apply(t), dim=0)


class Sobel(nn.Module):
    """The seed's fixed Sobel layer (DeepCluster): the channel mean (`sobel.0`, a 1x1 conv), then the
    horizontal and vertical Sobel filters (`sobel.1`, 3x3, zero padding): 3 channels in, 2 out.
    No parameter learns."""

    def __init__(self):
        super().__init__()
        gray = nn.Conv2d(3, 1, kernel_size=1)
        edges = nn.Conv2d(1, 2, kernel_size=3, padding=1)
        with torch.no_grad():
            gray.weight.fill_(1.0 / 3.0)
            gray.bias.zero_()
            edges.weight[0, 0] = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
            edges.weight[1, 0] = torch.tensor([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])
            edges.bias.zero_()
        self.sobel = nn.Sequential(gray, edges)
        for p in self.sobel.parameters():
            p.requires_grad = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sobel(x)
