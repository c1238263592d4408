"""Run by tests/test_algo_swav.py under torchrun (2 processes, gloo, CPU): each rank computes
SwAVHead's loss on its slice of one global batch (with and without a full queue) and saves it to
OUT/rank<r>.pt; the test compares their mean with the loss one process computes on the whole batch.

usage: torchrun --standalone --nproc_per_node=2 tests/swav_dist_loss.py OUT
"""
from __future__ import annotations

import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ssl_lib.models.heads import SwAVHead

NUM_CROPS, FEAT_DIM, PROTOTYPES, GLOBAL_BATCH, QUEUE_PER_RANK = [2, 2], 8, 6, 8, 4


def make_head() -> SwAVHead:
    torch.manual_seed(0)  # the same prototypes in every process
    return SwAVHead(feat_dim=FEAT_DIM, num_crops=NUM_CROPS, crops_for_assign=[0, 1], num_prototypes=PROTOTYPES)


def global_case() -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings [crops, global batch, D] and each rank's full queue [ranks, assigned crops, L, D]."""
    gen = torch.Generator().manual_seed(1)
    x = F.normalize(torch.randn(sum(NUM_CROPS), GLOBAL_BATCH, FEAT_DIM, generator=gen), dim=-1)
    queues = F.normalize(torch.randn(2, 2, QUEUE_PER_RANK, FEAT_DIM, generator=gen), dim=-1)
    return x, queues


def head_input(x: torch.Tensor) -> torch.Tensor:
    """The crop-major rows SwAVHead takes: [crop 0 batch, crop 1 batch, ...]."""
    return x.reshape(-1, FEAT_DIM)


def main(out: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    x, queues = global_case()
    local = x.chunk(world, dim=1)[rank]
    losses = {}
    for with_queue in (False, True):
        head = make_head()
        head.queue = queues[rank].clone() if with_queue else None
        losses[with_queue] = head(head_input(local))["loss"].item()
        assert head.use_queue == with_queue
    torch.save(losses, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
