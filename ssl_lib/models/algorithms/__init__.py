"""Algorithms, one file each; importing this package registers them in ALGORITHMS."""
from .base import BaseAlgorithm
from .moco import MoCo

__all__ = ["BaseAlgorithm", "MoCo"]
