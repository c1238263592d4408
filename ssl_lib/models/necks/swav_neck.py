"""SwAV's neck. Parameter names follow the seed (`projection_neck.*`, and `bn`, the same BN module
registered a second time as in the seed) so its checkpoints load."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ...registry import NECKS

NORM_1D = {"BN": nn.BatchNorm1d, "SyncBN": nn.SyncBatchNorm}


@NECKS.register_module()
class SwAVNeck(nn.Module):
    """Pool each resolution group's feature map, concatenate the groups, fc -> bn -> relu -> fc, then
    L2-normalise (`with_l2norm`). `hid_channels=0`: a single fc; `out_channels=0`: no projection.

    Input: one backbone output tuple per group of same-size crops (the seed's multi-crop forward);
    returns a 1-tuple [sum of group batches, out_channels], rows in crop order.
    """

    def __init__(self, in_channels: int, hid_channels: int, out_channels: int, with_avg_pool: bool = True,
                 with_l2norm: bool = True, norm_cfg: dict | None = None):
        super().__init__()
        self.in_channels, self.with_avg_pool, self.with_l2norm = in_channels, with_avg_pool, with_l2norm
        self.out_channels = out_channels or in_channels
        norm_cfg = dict(norm_cfg or dict(type="SyncBN"))
        norm = NORM_1D.get(norm_cfg.pop("type", None))
        if norm is None:
            raise ConfigError(f"SwAVNeck: norm_cfg type must be one of {', '.join(NORM_1D)}")
        if out_channels == 0:
            self.projection_neck = None
        elif hid_channels == 0:
            self.projection_neck = nn.Linear(in_channels, out_channels)
        else:
            self.bn = norm(hid_channels, **norm_cfg)
            self.projection_neck = nn.Sequential(nn.Linear(in_channels, hid_channels), self.bn,
                                                 nn.ReLU(inplace=True), nn.Linear(hid_channels, out_channels))

    def forward(self, x: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor]:
        feats = [F.adaptive_avg_pool2d(out[-1], 1) if self.with_avg_pool else out[-1] for out in x]
        z = torch.cat(feats).flatten(1)
        if self.projection_neck is not None:
            z = self.projection_neck(z)
        return (F.normalize(z, dim=1) if self.with_l2norm else z,)
