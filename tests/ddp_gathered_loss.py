"""Run under `torchrun --standalone --nproc_per_node=2 tests/ddp_gathered_loss.py ALGO OUT_DIR` (gloo,
CPU): ALGO (SimCLR or BarlowTwins) on two ranks, each holding half of a global batch, against one
process holding all of it. Each rank writes OUT_DIR/rank<r>.json with the differences; exits 1 when
one is too large.

The model runs in eval mode so that BN uses its running statistics: each sample's embedding is then
the same whichever rank computes it, and only the loss's gathering across ranks is under test.
Checked: (1) every rank's loss equals the one-process loss over the global batch; (2) the gradient
reaching each rank's embeddings, divided by the world size, equals the one-process gradient of those
rows (gather_with_grad hands each rank the sum over the ranks' identical losses; DDP's averaging of
parameter gradients divides it back); (3) the DDP-averaged parameter gradients equal the one-process
ones.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ssl_lib.models import build_algorithm

GLOBAL_BATCH, SIZE = 8, 16


def config(algo: str) -> dict:
    backbone = dict(type="ResNet", depth=18, base_channels=8, stem="cifar", norm_cfg=dict(type="BN"))
    if algo == "SimCLR":
        return dict(type="SimCLR", backbone=backbone,
                    neck=dict(type="NonLinearNeck", in_channels=64, hid_channels=32, out_channels=16,
                              norm_cfg=dict(type="BN")),
                    head=dict(type="ContrastiveHead", temperature=0.1))
    return dict(type="BarlowTwins", backbone=backbone,
                neck=dict(type="NonLinearNeck", in_channels=64, hid_channels=32, out_channels=16, num_layers=3,
                          with_last_bn=False, norm_cfg=dict(type="BN")),
                head=dict(type="LatentCrossCorrelationHead", in_channels=16, lambd=0.05))


def run(model: torch.nn.Module, neck: torch.nn.Module, views: list[torch.Tensor]) -> tuple[torch.Tensor, list]:
    """The loss, and the neck's outputs (in the order the neck produced them) with their gradients."""
    outs = []

    def keep(mod, args, out):
        out[0].retain_grad()
        outs.append(out[0])

    hook = neck.register_forward_hook(keep)
    model.zero_grad()
    loss = model(views, mode="train")["loss"]
    loss.backward()
    hook.remove()
    return loss.detach(), outs


def main(algo: str, out_dir: str) -> int:
    torch.manual_seed(0)  # the same weights and the same global batch on every rank
    single = build_algorithm(config(algo))
    x = torch.randn(GLOBAL_BATCH, 3, SIZE, SIZE)
    views = [x + 0.3 * torch.randn_like(x), x + 0.3 * torch.randn_like(x)]
    with torch.no_grad():  # running statistics that differ from BN's initial (0, 1)
        single.train()(views, mode="train")
    single.eval()
    loss_one, z_one = run(single, single.neck, views)  # before the process group exists: one process, no gathering

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    n = GLOBAL_BATCH // world
    distributed = build_algorithm(config(algo))
    distributed.load_state_dict(single.state_dict())
    ddp = DistributedDataParallel(distributed.eval())
    loss_dist, z_dist = run(ddp, distributed.neck, [v[rank * n:(rank + 1) * n] for v in views])

    # this rank's rows in the one-process embeddings: (embedding, gradient) pairs to compare
    if algo == "SimCLR":  # one neck call on [view 1; view 2]
        mine = torch.arange(rank * n, (rank + 1) * n)
        rows = [torch.cat([mine, GLOBAL_BATCH + mine])]
    else:  # one neck call per view
        rows = [torch.arange(rank * n, (rank + 1) * n)] * 2
    pairs = [((zd, zd.grad / world), (zo[r], zo.grad[r])) for zd, zo, r in zip(z_dist, z_one, rows, strict=True)]
    emb_diff = max((d[0] - o[0]).abs().max().item() for d, o in pairs)
    grad_diff = max((d[1] - o[1]).abs().max().item() for d, o in pairs)
    grad_scale = max(o[1].abs().max().item() for _, o in pairs)
    param_diff = max((p_d.grad - p_o.grad).abs().max().item()
                     for p_d, p_o in zip(distributed.parameters(), single.parameters(), strict=True))
    param_scale = max(p.grad.abs().max().item() for p in single.parameters())
    report = dict(algo=algo, rank=rank, loss_one=loss_one.item(), loss_dist=loss_dist.item(), emb_diff=emb_diff,
                  grad_diff=grad_diff, grad_scale=grad_scale, param_diff=param_diff, param_scale=param_scale)
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(report))
    ok = (abs(loss_one.item() - loss_dist.item()) <= 1e-5 * abs(loss_one.item()) and emb_diff < 1e-5
          and grad_diff <= 1e-4 * grad_scale and param_diff <= 1e-4 * param_scale and grad_scale > 0)
    dist.destroy_process_group()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
