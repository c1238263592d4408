"""Datasets, one file per kind as in the seed; importing this package registers them in DATASETS."""
from .cae import BEiTMaskGenerator, CAEDataset
from .deepcluster import DeepClusterDataset
from .masked import MaskedImageDataset, SimMIMMaskGenerator
from .multi_view import MultiViewDataset, SingleViewDataset, build_source
from .relative_loc import RelativeLocDataset
from .rotation_pred import RotationPredDataset

__all__ = ["DeepClusterDataset", "MultiViewDataset", "RelativeLocDataset", "RotationPredDataset", "SingleViewDataset", "build_source", "MaskedImageDataset", "SimMIMMaskGenerator", "CAEDataset", "BEiTMaskGenerator"]
