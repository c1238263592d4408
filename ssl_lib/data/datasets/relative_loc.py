"""The seed's RelativeLocDataset (Doersch et al. 2015): the 8 neighbours of a 3x3 grid of patches,
each paired with the centre patch, labelled by their position."""
from __future__ import annotations

import torch
from PIL import Image
from torch.utils.data import Dataset

from ...errors import ConfigError
from ...registry import DATASETS
from ..transforms import build_pipeline
from .multi_view import build_source

SPLIT_PER_SIDE = 3  # a 3x3 grid: 8 neighbours around the centre, as the seed


def image_to_patches(img: Image.Image, patch_jitter: int) -> list[Image.Image]:
    """The 9 grid cells of `img` in row-major order, each cropped to (cell - patch_jitter) pixels per
    side at a random offset inside the cell (the gap the paper leaves so edges cannot give it away)."""
    w, h = img.size
    h_grid, w_grid = h // SPLIT_PER_SIDE, w // SPLIT_PER_SIDE
    h_patch, w_patch = h_grid - patch_jitter, w_grid - patch_jitter
    if h_patch <= 0 or w_patch <= 0:
        raise ConfigError(f"RelativeLocDataset: a {w}x{h} image gives {w_grid}x{h_grid} grid cells, too small for "
                          f"patch_jitter={patch_jitter}; resize the image in `pipeline` or lower patch_jitter "
                          f"below {min(h_grid, w_grid)}")
    patches = []
    for i in range(SPLIT_PER_SIDE):
        for j in range(SPLIT_PER_SIDE):
            top = i * h_grid + int(torch.randint(0, h_grid - h_patch + 1, ()))
            left = j * w_grid + int(torch.randint(0, w_grid - w_patch + 1, ()))
            patches.append(img.crop((left, top, left + w_patch, top + h_patch)))
    return patches


@DATASETS.register_module()
class RelativeLocDataset(Dataset):
    """`dict(img=[8, 2C, h, w], patch_label=[0..7], label, idx)`: `img[k]` is the k-th neighbour (row-major,
    centre skipped) and the centre patch concatenated on the channel dim, neighbour first as in the seed.

    `pipeline` works on the whole PIL image, `format_pipeline` (ToTensor, Normalize) on each patch.
    `patch_jitter` is the seed's fixed 21 px (for 255 px images); small images need a smaller one.
    """

    def __init__(self, data_source: dict, pipeline: list[dict], format_pipeline: list[dict],
                 prefetch: bool = False, patch_jitter: int = 21):
        # `prefetch` is accepted so seed configs load; decoding always happens in the loader workers here.
        if patch_jitter < 0:
            raise ConfigError(f"RelativeLocDataset: patch_jitter must be >= 0, got {patch_jitter}")
        self.data_source = build_source(data_source)
        self.pipeline = build_pipeline(pipeline)
        self.format_pipeline = build_pipeline(format_pipeline)
        self.patch_jitter = int(patch_jitter)

    def __len__(self) -> int:
        return len(self.data_source)

    def __getitem__(self, idx: int) -> dict:
        img = self.pipeline(self.data_source.get_image(idx))
        patches = [self.format_pipeline(p) for p in image_to_patches(img, self.patch_jitter)]
        centre = SPLIT_PER_SIDE * SPLIT_PER_SIDE // 2
        pairs = [torch.cat((p, patches[centre]), dim=0) for k, p in enumerate(patches) if k != centre]
        return dict(img=torch.stack(pairs), patch_label=torch.arange(len(pairs)),
                    label=self.data_source.get_label(idx), idx=idx)
