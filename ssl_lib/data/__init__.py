"""Data sources, transforms and datasets; importing this registers them all."""
from . import datasets, shards, sources, transforms  # noqa: F401  (registration)
from .datasets import MultiViewDataset, SingleViewDataset
from .shards import BlockShuffleSampler, ParquetDataset
from .sources import FashionMNIST, ImageNet, source_from_uri
from .transforms import build_pipeline

__all__ = ["BlockShuffleSampler", "FashionMNIST", "ImageNet", "MultiViewDataset", "ParquetDataset", "SingleViewDataset",
           "build_pipeline", "source_from_uri"]
