"""Image transforms under the seed's names, on PIL images; configs name them by `type`.

Most are torchvision's own classes, registered as they are; the seed's GaussianBlur (PIL
filter, sigma drawn per call), Solarization and RandomAppliedTrans (inner transforms from
configs) are defined here. Randomness comes from torch's generator, which DataLoader seeds
per worker, so runs are reproducible under `torch.manual_seed`.
"""
from __future__ import annotations

import torch
import torchvision.transforms as T
from PIL import Image, ImageFilter, ImageOps

from ..errors import ConfigError
from ..registry import PIPELINES, build

for _cls in (T.RandomResizedCrop, T.ColorJitter, T.RandomGrayscale, T.RandomHorizontalFlip,
             T.ToTensor, T.Normalize, T.Resize, T.CenterCrop, T.RandomCrop, T.RandomRotation,
             T.RandAugment, T.RandomErasing):  # the last two: the fine-tuning recipes (RandomErasing on tensors)
    PIPELINES.register_module(module=_cls)


def _check_p(p: float, name: str) -> float:
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"{name}: p={p} is not a probability in [0, 1]")
    return float(p)


@PIPELINES.register_module()
class RandomAppliedTrans(T.RandomApply):
    """Apply the listed transforms (config dicts), all together, with probability p."""

    def __init__(self, transforms: list[dict], p: float = 0.5):
        super().__init__([build(cfg, PIPELINES) for cfg in transforms], p=_check_p(p, "RandomAppliedTrans"))


@PIPELINES.register_module()
class GaussianBlur:
    """With probability p, blur with PIL's GaussianBlur, sigma uniform in [sigma_min, sigma_max] (SimCLR)."""

    def __init__(self, sigma_min: float, sigma_max: float, p: float = 0.5):
        if not 0 <= sigma_min <= sigma_max:
            raise ConfigError(f"GaussianBlur: need 0 <= sigma_min <= sigma_max, got {sigma_min}, {sigma_max}")
        self.sigma_min, self.sigma_max, self.p = float(sigma_min), float(sigma_max), _check_p(p, "GaussianBlur")

    def __call__(self, img: Image.Image) -> Image.Image:
        if torch.rand(1).item() >= self.p:
            return img
        sigma = torch.empty(1).uniform_(self.sigma_min, self.sigma_max).item()
        return img.filter(ImageFilter.GaussianBlur(radius=sigma))

    def __repr__(self) -> str:
        return f"GaussianBlur(sigma_min={self.sigma_min}, sigma_max={self.sigma_max}, p={self.p})"


@PIPELINES.register_module()
class Solarization:
    """With probability p, invert pixels at or above `threshold` (BYOL)."""

    def __init__(self, threshold: int = 128, p: float = 0.5):
        self.threshold, self.p = threshold, _check_p(p, "Solarization")

    def __call__(self, img: Image.Image) -> Image.Image:
        if torch.rand(1).item() >= self.p:
            return img
        return ImageOps.solarize(img, self.threshold)

    def __repr__(self) -> str:
        return f"Solarization(threshold={self.threshold}, p={self.p})"


@PIPELINES.register_module()
class Sobel:
    """On a normalized 3-channel tensor: the channel mean, then the horizontal and vertical Sobel
    filters (zero padding), 2 channels out. What the seed's `with_sobel` algorithms (DeepCluster)
    put in front of the backbone, so that a backbone trained behind it is evaluated alone."""

    KERNELS = torch.tensor([[[[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]],
                            [[[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]]]])

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        gray = img.mean(dim=0, keepdim=True)
        return torch.nn.functional.conv2d(gray[None], self.KERNELS, padding=1)[0]

    def __repr__(self) -> str:
        return "Sobel()"


def build_pipeline(cfgs: list[dict]) -> T.Compose:
    """A callable applying the transforms that `cfgs` name, in order."""
    if not isinstance(cfgs, (list, tuple)):
        raise ConfigError(f"a pipeline is a list of transform dicts, got {cfgs!r}")
    return T.Compose([build(cfg, PIPELINES) for cfg in cfgs])
