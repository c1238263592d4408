"""The base of every algorithm: a backbone, an optional neck and head, built from registries."""
from __future__ import annotations

import torch
from torch import nn

from ...errors import ConfigError
from ...registry import BACKBONES, HEADS, NECKS, build


class BaseAlgorithm(nn.Module):
    """`forward(img, mode)` dispatches: 'train' -> forward_train(views, **kwargs) -> dict with 'loss';
    'extract' -> extract_feat(img) -> tuple of backbone feature maps.

    `num_views`: the views per sample that forward_train expects (None: not a multi-view method).
    """

    num_views: int | None = None

    def __init__(self, backbone: dict, neck: dict | None = None, head: dict | None = None):
        super().__init__()
        self.backbone = build(backbone, BACKBONES)
        self.neck = build(neck, NECKS)
        self.head = build(head, HEADS)
        out = getattr(self.backbone, "out_channels", None)
        want = getattr(self.neck, "in_channels", None)
        if out and want is not None and want != out[-1]:
            raise ConfigError(f"model.neck.in_channels={want} does not match the backbone's output width "
                              f"{out[-1]} ({backbone.get('type')} out_indices={list(getattr(self.backbone, 'out_indices', []))}); "
                              f"set model.neck.in_channels={out[-1]}")

    def check_neck_feeds_head(self) -> None:
        """For heads that read the neck's embeddings: their widths must agree."""
        out, want = getattr(self.neck, "out_channels", None), getattr(self.head, "in_channels", None)
        if out is not None and want is not None and want != out:
            raise ConfigError(f"model.head.in_channels={want} does not match the neck's output width {out}; "
                              f"set model.head.in_channels={out}")

    def check_data(self, num_samples: int, global_batch: int, num_views: int | None) -> None:
        """Called by the runner before training: refuse data this algorithm cannot train on."""
        if self.num_views is not None and num_views is not None and num_views != self.num_views:
            raise ConfigError(f"{type(self).__name__} needs {self.num_views} views per sample, the pipeline gives "
                              f"{num_views}; set data.train.num_views to a list summing to {self.num_views}")

    def forward(self, img, mode: str = "train", **kwargs):
        if mode == "train":
            return self.forward_train(img, **kwargs)
        if mode == "extract":
            return self.extract_feat(img)
        raise ValueError(f"unknown forward mode {mode!r}; expected 'train' or 'extract'")

    def forward_train(self, img: list[torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def extract_feat(self, img: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.backbone(img)
