"""Heads, one file each as in the seed: turn what an algorithm compares into a dict of losses.
Importing this package registers them in HEADS."""
from .cls_head import ClsHead
from .contrastive_head import ContrastiveHead
from .latent_cross_correlation_head import LatentCrossCorrelationHead
from .latent_pred_head import LatentPredictHead
from .swav_head import SwAVHead

__all__ = ["ClsHead", "ContrastiveHead", "LatentCrossCorrelationHead", "LatentPredictHead", "SwAVHead"]
