"""DenseCL (Wang et al. 2021): MoCo v2 plus a contrastive loss between matched positions of the
two views' dense feature maps. The warm-up of `loss_lambda` is DenseCLHook's."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...registry import ALGORITHMS
from ..utils import batch_shuffle_ddp, batch_unshuffle_ddp
from .moco import MoCo, enqueue


@torch.no_grad()
def dense_correspondence(q_map: torch.Tensor, k_map: torch.Tensor) -> torch.Tensor:
    """For each query position, the key position of highest cosine similarity.

    q_map, k_map: [N, C, S] backbone features over S positions. Returns [N, S] key indices.
    """
    sim = torch.einsum("ncs,nct->nst", F.normalize(q_map, dim=1), F.normalize(k_map, dim=1))
    return sim.argmax(dim=2)


@ALGORITHMS.register_module()
class DenseCL(MoCo):
    """MoCo's encoders, momentum update and global queue, with DenseCLNeck's dense output and a
    second queue (`queue2`) of average-pooled dense keys.

    loss = (1 - loss_lambda) * global InfoNCE + loss_lambda * dense InfoNCE, where each query
    position's positive is the key position its backbone feature matches best.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict, queue_len: int = 65536, feat_dim: int = 128,
                 momentum: float = 0.999, loss_lambda: float = 0.5):
        super().__init__(backbone, neck, head, queue_len, feat_dim, momentum)
        self.loss_lambda = loss_lambda
        self.register_buffer("queue2", F.normalize(torch.randn(feat_dim, queue_len), dim=0))
        self.register_buffer("queue2_ptr", torch.zeros(1, dtype=torch.long))

    def forward_train(self, img: list[torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        im_q, im_k = img[0], img[1]
        q_map = self.backbone(im_q)
        q, q_grid, _ = self.neck(q_map)
        q, q_grid = F.normalize(q, dim=1), F.normalize(q_grid, dim=1)  # [N, D], [N, D, S]
        with torch.no_grad():
            self.momentum_update()
            im_k, idx_unshuffle = batch_shuffle_ddp(im_k)  # shuffled BN, as in MoCo
            k_map = self.encoder_k[0](im_k)
            k, k_grid, k2 = (F.normalize(t, dim=1) for t in self.encoder_k[1](k_map))
            k, k_grid, k2, k_map = (batch_unshuffle_ddp(t, idx_unshuffle)
                                    for t in (k, k_grid, k2, k_map[-1].flatten(2)))
        loss_single = self.head((q * k).sum(1, keepdim=True), q @ self.queue.clone())["loss"]

        match = dense_correspondence(q_map[-1].flatten(2), k_map)  # [N, S]
        k_matched = torch.gather(k_grid, 2, match.unsqueeze(1).expand(-1, k_grid.shape[1], -1))
        q_dense = q_grid.transpose(1, 2).reshape(-1, q_grid.shape[1])  # [N * S, D]
        loss_dense = self.head((q_grid * k_matched).sum(1).reshape(-1, 1), q_dense @ self.queue2.clone())["loss"]

        enqueue(self.queue, self.queue_ptr, k)
        enqueue(self.queue2, self.queue2_ptr, k2)
        loss_single, loss_dense = loss_single * (1 - self.loss_lambda), loss_dense * self.loss_lambda
        return dict(loss=loss_single + loss_dense, loss_single=loss_single.detach(), loss_dense=loss_dense.detach())
