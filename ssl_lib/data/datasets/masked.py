"""Masked-image-modelling samples: an image and the mask of the patches to hide (SimMIM)."""
from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset

from ...errors import ConfigError
from ...registry import DATASETS, PIPELINES, build
from ..transforms import build_pipeline
from .multi_view import build_source


@PIPELINES.register_module()
class SimMIMMaskGenerator:
    """SimMIM's random masking (Xie et al. 2022, sec. 3.1), the seed's transform: the image is cut into
    mask_patch_size blocks and ceil(mask_ratio * blocks) of them, drawn uniformly, are masked (the authors'
    and the seed's count); the mask is given on the model's patch grid, (input_size / model_patch_size)^2,
    1 = masked. Called on an image it returns (image, mask), as the last transform of the seed's pipeline.
    Draws come from torch's global generator, as every augmentation's here, so a resumed run repeats them."""

    def __init__(self, input_size: int = 192, mask_patch_size: int = 32, model_patch_size: int = 4,
                 mask_ratio: float = 0.6):
        if input_size % mask_patch_size:
            raise ConfigError(f"SimMIMMaskGenerator: input_size {input_size} is not a multiple of "
                              f"mask_patch_size {mask_patch_size}")
        if mask_patch_size % model_patch_size:
            raise ConfigError(f"SimMIMMaskGenerator: mask_patch_size {mask_patch_size} is not a multiple of "
                              f"model_patch_size {model_patch_size}")
        if not 0 < mask_ratio < 1:
            raise ConfigError(f"SimMIMMaskGenerator: mask_ratio must be in (0, 1), got {mask_ratio}")
        self.input_size, self.model_patch_size = input_size, model_patch_size
        self.side = input_size // mask_patch_size  # blocks per side
        self.scale = mask_patch_size // model_patch_size  # model patches per block side
        self.mask_count = math.ceil(self.side ** 2 * mask_ratio)

    def mask(self) -> torch.Tensor:
        blocks = torch.zeros(self.side ** 2, dtype=torch.bool)
        blocks[torch.randperm(self.side ** 2)[:self.mask_count]] = True
        grid = blocks.view(self.side, self.side)
        return grid.repeat_interleave(self.scale, 0).repeat_interleave(self.scale, 1)

    def __call__(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if tuple(img.shape[-2:]) != (self.input_size, self.input_size):
            raise ConfigError(f"SimMIMMaskGenerator: input_size={self.input_size} but the pipeline gives "
                              f"{tuple(img.shape[-2:])} images; crop them to {self.input_size} px or set input_size")
        return img, self.mask()


@DATASETS.register_module()
class MaskedImageDataset(Dataset):
    """`dict(img=tensor, mask=(H/p, W/p) bool, label, idx)`: the image through `pipeline`, then the mask
    of `mask_generator` (a config dict, e.g. SimMIMMaskGenerator)."""

    def __init__(self, data_source: dict, pipeline: list[dict], mask_generator: dict, prefetch: bool = False):
        # `prefetch` is accepted so seed configs load; decoding always happens in the loader workers here.
        self.data_source = build_source(data_source)
        self.pipeline = build_pipeline(pipeline)
        self.mask_generator = build(mask_generator, PIPELINES)

    def __len__(self) -> int:
        return len(self.data_source)

    def __getitem__(self, idx: int) -> dict:
        img, mask = self.mask_generator(self.pipeline(self.data_source.get_image(idx)))
        return dict(img=img, mask=mask, label=self.data_source.get_label(idx), idx=idx)
