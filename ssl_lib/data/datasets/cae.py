"""CAE's (and BEiT's) data: one crop resized twice (the model's view and the tokenizer's), and a
blockwise mask over the model's patch grid. Every draw is from torch's generator, which the runner
seeds per epoch and restores on resume, so a resumed run sees the same crops and masks."""
from __future__ import annotations

import math

import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import Dataset

from ...errors import ConfigError
from ...registry import DATASETS, PIPELINES, build
from ..transforms import build_pipeline
from .multi_view import build_source

LOGIT_LAPLACE_EPS = 0.1
INTERPOLATIONS = {"bilinear": TF.InterpolationMode.BILINEAR, "bicubic": TF.InterpolationMode.BICUBIC,
                  "lanczos": TF.InterpolationMode.LANCZOS, "nearest": TF.InterpolationMode.NEAREST}


def map_pixels(x: torch.Tensor, eps: float = LOGIT_LAPLACE_EPS) -> torch.Tensor:
    """DALL-E's input map: pixels in [0, 1] -> [eps, 1 - eps], the range its dVAE's logit-Laplace
    likelihood is defined on."""
    return (1 - 2 * eps) * x + eps


def _draw(low: float, high: float) -> float:
    return float(torch.empty(1).uniform_(low, high))


@PIPELINES.register_module()
class BEiTMaskGenerator:
    """BEiT's blockwise masking (Bao et al. 2022, Algorithm 1) on an input_size (h, w) patch grid:
    rectangles of min_num_patches..max_num_patches patches and aspect ratio in [min_aspect,
    max_aspect] (log-uniform; max_aspect defaults to 1 / min_aspect) are masked until exactly
    `num_masking_patches` are. A rectangle may overlap masked patches but never overshoot the count;
    when ten tries in a row add nothing (few patches left to mask), the rest are masked at random
    unmasked positions, so the count is always exact. `__call__()` -> a [h, w] bool mask, 1 = masked."""

    def __init__(self, input_size: int | tuple[int, int] = (14, 14), num_masking_patches: int = 75,
                 min_num_patches: int = 16, max_num_patches: int | None = None, min_aspect: float = 0.3,
                 max_aspect: float | None = None):
        self.height, self.width = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        if not 0 < num_masking_patches <= self.height * self.width:
            raise ConfigError(f"BEiTMaskGenerator: num_masking_patches={num_masking_patches} must be in "
                              f"1..{self.height * self.width} (the {self.height} x {self.width} grid)")
        self.num_masking_patches = num_masking_patches
        self.min_num_patches = min_num_patches
        self.max_num_patches = num_masking_patches if max_num_patches is None else max_num_patches
        if not 0 < min_num_patches <= self.max_num_patches:
            raise ConfigError(f"BEiTMaskGenerator: need 0 < min_num_patches={min_num_patches} <= max_num_patches="
                              f"{self.max_num_patches}")
        max_aspect = max_aspect or 1 / min_aspect
        if not 0 < min_aspect <= max_aspect:
            raise ConfigError(f"BEiTMaskGenerator: need 0 < min_aspect={min_aspect} <= max_aspect={max_aspect}")
        self.log_aspect = (math.log(min_aspect), math.log(max_aspect))

    def _rectangle(self, mask: torch.Tensor, budget: int) -> int:
        """Mask one random rectangle adding 1..budget new patches (ten tries); the number added."""
        for _ in range(10):
            area = _draw(*sorted((self.min_num_patches, budget)))  # as random.uniform when budget < min
            aspect = math.exp(_draw(*self.log_aspect))
            h, w = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
            if not (0 < h < self.height and 0 < w < self.width):
                continue
            top = int(torch.randint(0, self.height - h + 1, ()))
            left = int(torch.randint(0, self.width - w + 1, ()))
            new = h * w - int(mask[top:top + h, left:left + w].sum())
            if 0 < new <= budget:
                mask[top:top + h, left:left + w] = True
                return new
        return 0

    def __call__(self) -> torch.Tensor:
        mask = torch.zeros(self.height, self.width, dtype=torch.bool)
        count = 0
        while count < self.num_masking_patches:
            added = self._rectangle(mask, min(self.num_masking_patches - count, self.max_num_patches))
            if added == 0:
                free = (~mask).flatten().nonzero().squeeze(1)
                pick = free[torch.randperm(len(free))[:self.num_masking_patches - count]]
                mask.view(-1)[pick] = True
                break
            count += added
        return mask

    def __repr__(self) -> str:
        return (f"BEiTMaskGenerator({self.height}x{self.width}, {self.num_masking_patches} masked, rectangles of "
                f"{self.min_num_patches}..{self.max_num_patches})")


@PIPELINES.register_module()
class RandomResizedCropAndInterpolationWithTwoPic:
    """torchvision's RandomResizedCrop drawn once and resized twice: to `size` with `interpolation` (the
    model's view) and to `second_size` with `second_interpolation` (the tokenizer's; BEiT uses lanczos,
    which keeps the detail its tokens encode). PIL image -> (PIL, PIL)."""

    def __init__(self, size: int, second_size: int, scale: tuple = (0.08, 1.0), ratio: tuple = (3 / 4, 4 / 3),
                 interpolation: str = "bilinear", second_interpolation: str = "lanczos"):
        for name in (interpolation, second_interpolation):
            if name not in INTERPOLATIONS:
                raise ConfigError(f"RandomResizedCropAndInterpolationWithTwoPic: interpolation {name!r} is not one "
                                  f"of {sorted(INTERPOLATIONS)}")
        self.size, self.second_size = (size, size), (second_size, second_size)
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self.interpolation = INTERPOLATIONS[interpolation]
        self.second_interpolation = INTERPOLATIONS[second_interpolation]

    def __call__(self, img: Image.Image) -> tuple[Image.Image, Image.Image]:
        top, left, h, w = T.RandomResizedCrop.get_params(img, self.scale, self.ratio)
        return (TF.resized_crop(img, top, left, h, w, self.size, self.interpolation),
                TF.resized_crop(img, top, left, h, w, self.second_size, self.second_interpolation))


@DATASETS.register_module()
class CAEDataset(Dataset):
    """`dict(img=[model view, tokenizer view], mask, label, idx)`: `pipeline` (PIL transforms ending in
    RandomResizedCropAndInterpolationWithTwoPic) gives the two views; the model's is normalised by
    `img_norm_cfg`, the tokenizer's mapped by DALL-E's map_pixels; `mask_generator` (a pipeline dict,
    BEiTMaskGenerator) draws the [h, w] mask over the model's patch grid."""

    def __init__(self, data_source: dict, pipeline: list[dict], mask_generator: dict, img_norm_cfg: dict,
                 prefetch: bool = False):
        # `prefetch` is accepted so seed configs load; decoding always happens in the loader workers here.
        self.data_source = build_source(data_source)
        self.pipeline = build_pipeline(pipeline)
        self.mask_generator = build(mask_generator, PIPELINES)
        self.normalize = T.Normalize(**img_norm_cfg)

    def __len__(self) -> int:
        return len(self.data_source)

    def __getitem__(self, idx: int) -> dict:
        views = self.pipeline(self.data_source.get_image(idx))
        if not (isinstance(views, tuple) and len(views) == 2 and all(isinstance(v, Image.Image) for v in views)):
            raise ConfigError(f"CAEDataset: the pipeline must end in RandomResizedCropAndInterpolationWithTwoPic "
                              f"(two PIL images), it gave {type(views).__name__}")
        img = self.normalize(TF.to_tensor(views[0]))
        target = map_pixels(TF.to_tensor(views[1]))
        return dict(img=[img, target], mask=self.mask_generator(), label=self.data_source.get_label(idx), idx=idx)
