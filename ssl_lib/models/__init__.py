"""Models; importing this package registers every backbone, neck, head, memory and algorithm."""
from . import algorithms, backbones, heads, losses, memories, necks, utils, vit
from .algorithms import *  # noqa: F401,F403
from .algorithms import BaseAlgorithm
from .backbones import ResNet
from .vit import VisionTransformer
from .cae_vit import CAEViT
from .swin import SwinTransformer
from .heads import *  # noqa: F401,F403
from .memories import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from ..registry import ALGORITHMS, build


def build_algorithm(cfg: dict):
    """An algorithm from its config dict (`cfg.model`), as `mmselfsup.models.build_algorithm`."""
    return build(cfg, ALGORITHMS)


__all__ = ["algorithms", "backbones", "heads", "losses", "memories", "necks", "utils", "BaseAlgorithm",
           "ResNet", "VisionTransformer", "build_algorithm", *algorithms.__all__, *heads.__all__, *memories.__all__, *necks.__all__]
