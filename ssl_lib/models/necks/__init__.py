"""Necks, one file each as in the seed: map the backbone's tuple of feature maps to the vectors a
head compares. Importing this package registers them in NECKS."""
from .avgpool2d_neck import AvgPool2dNeck
from .cae_neck import CAENeck
from .densecl_neck import DenseCLNeck
from .dino_neck import DINONeck
from .linear_neck import LinearNeck
from .mae_neck import MAEPretrainDecoder
from .mocov2_neck import MoCoV2Neck
from .nonlinear_neck import NonLinearNeck
from .odc_neck import ODCNeck
from .simmim_neck import SimMIMNeck
from .relative_loc_neck import RelativeLocNeck
from .swav_neck import SwAVNeck

__all__ = ["AvgPool2dNeck", "ODCNeck", "RelativeLocNeck", "LinearNeck", "MoCoV2Neck", "NonLinearNeck", "DenseCLNeck", "SwAVNeck", "DINONeck", "MAEPretrainDecoder", "SimMIMNeck", "CAENeck"]
