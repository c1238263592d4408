"""The seed's RotationPredDataset (Gidaris et al. 2018): each image at 0, 90, 180 and 270 degrees."""
from __future__ import annotations

import torch
from torch.utils.data import Dataset

from ...errors import ConfigError
from ...registry import DATASETS
from ..transforms import build_pipeline
from .multi_view import build_source

NUM_ROTATIONS = 4


@DATASETS.register_module()
class RotationPredDataset(Dataset):
    """`dict(img=[4, C, H, W], rot_label=[0, 1, 2, 3], label, idx)`: `img[k]` is the pipeline's tensor
    rotated by k * 90 degrees counter-clockwise (torch.rot90). The pipeline must end in a tensor."""

    def __init__(self, data_source: dict, pipeline: list[dict], prefetch: bool = False):
        # `prefetch` is accepted so seed configs load; decoding always happens in the loader workers here.
        self.data_source = build_source(data_source)
        self.pipeline = build_pipeline(pipeline)

    def __len__(self) -> int:
        return len(self.data_source)

    def __getitem__(self, idx: int) -> dict:
        img = self.pipeline(self.data_source.get_image(idx))
        if not isinstance(img, torch.Tensor) or img.dim() != 3:
            raise ConfigError(f"RotationPredDataset: the pipeline must end in a CxHxW tensor (ToTensor, Normalize), "
                              f"it gave {type(img).__name__}")
        if img.shape[1] != img.shape[2]:
            raise ConfigError(f"RotationPredDataset: the rotated copies are stacked, so the view must be square; the "
                              f"pipeline gave {img.shape[2]}x{img.shape[1]} (width x height): end it with a square crop")
        rotations = torch.stack([torch.rot90(img, k, dims=(1, 2)) for k in range(NUM_ROTATIONS)])
        return dict(img=rotations, rot_label=torch.arange(NUM_ROTATIONS),
                    label=self.data_source.get_label(idx), idx=idx)
