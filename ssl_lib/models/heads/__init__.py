"""Heads, one file each as in the seed: turn what an algorithm compares into a dict of losses.
Importing this package registers them in HEADS."""
from .cae_head import CAEHead
from .cls_head import ClsHead
from .contrastive_head import ContrastiveHead
from .dino_head import DINOHead
from .latent_cross_correlation_head import LatentCrossCorrelationHead
from .latent_pred_head import LatentPredictHead
from .mae_head import MAEPretrainHead
from .mocov3_head import MoCoV3Head
from .simmim_head import SimMIMHead
from .swav_head import SwAVHead
from .vicreg_head import VICRegHead

__all__ = ["ClsHead", "ContrastiveHead", "LatentCrossCorrelationHead", "LatentPredictHead", "SwAVHead", "DINOHead", "VICRegHead", "MAEPretrainHead", "MoCoV3Head", "SimMIMHead", "CAEHead"]
