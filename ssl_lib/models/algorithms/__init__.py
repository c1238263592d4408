"""Algorithms, one file each; importing this package registers them in ALGORITHMS."""
from .barlowtwins import BarlowTwins
from .base import BaseAlgorithm
from .byol import BYOL
from .cae import CAE
from .dino import DINO
from .deepcluster import DeepCluster
from .densecl import DenseCL
from .mae import MAE
from .moco import MoCo
from .mocov3 import MoCoV3
from .npid import NPID
from .odc import ODC
from .relative_loc import RelativeLoc
from .rotation_pred import RotationPred
from .simclr import SimCLR
from .simmim import SimMIM
from .simsiam import SimSiam
from .swav import SwAV
from .vicreg import VICReg

__all__ = ["BaseAlgorithm", "DeepCluster", "ODC", "MoCo", "SimCLR", "BarlowTwins", "BYOL", "SimSiam", "RelativeLoc", "RotationPred", "DenseCL", "NPID", "SwAV", "DINO", "VICReg", "MAE", "MoCoV3", "SimMIM", "CAE"]
