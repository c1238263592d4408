"""The base of every algorithm: a backbone, an optional neck and head, built from registries."""
from __future__ import annotations

import torch
from torch import nn

from ...registry import BACKBONES, HEADS, NECKS, build


class BaseAlgorithm(nn.Module):
    """`forward(img, mode)` dispatches: 'train' -> forward_train(views) -> dict with 'loss';
    'extract' -> extract_feat(img) -> tuple of backbone feature maps."""

    def __init__(self, backbone: dict, neck: dict | None = None, head: dict | None = None):
        super().__init__()
        self.backbone = build(backbone, BACKBONES)
        self.neck = build(neck, NECKS)
        self.head = build(head, HEADS)

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
