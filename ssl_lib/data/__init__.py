"""Data sources, transforms and datasets; importing this registers them all."""
from . import datasets, sources, transforms  # noqa: F401  (registration)
from .datasets import MultiViewDataset, SingleViewDataset
from .sources import FashionMNIST, ImageNet, ParquetDataset, source_from_uri
from .transforms import build_pipeline

__all__ = ["FashionMNIST", "ImageNet", "MultiViewDataset", "ParquetDataset", "SingleViewDataset",
           "build_pipeline", "source_from_uri"]
