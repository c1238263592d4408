"""Models; importing this package registers every backbone, neck, head and algorithm."""
from . import algorithms, backbones, heads, losses, necks, utils
from .algorithms import BaseAlgorithm, MoCo
from .backbones import ResNet
from .heads import ContrastiveHead
from .necks import LinearNeck, MoCoV2Neck

__all__ = ["algorithms", "backbones", "heads", "losses", "necks", "utils", "BaseAlgorithm", "MoCo",
           "ResNet", "ContrastiveHead", "LinearNeck", "MoCoV2Neck"]
