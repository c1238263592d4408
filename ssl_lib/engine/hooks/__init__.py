"""Hooks, one file each as in the seed: behaviour between iterations (momentum schedules,
re-clustering, queues, ...). Importing this package registers them in HOOKS."""
from .deepcluster_hook import DeepClusterHook
from .densecl_hook import DenseCLHook
from .dino_hook import DINOHook
from .ema_hook import EMAHook
from .eval_hook import EvalHook
from .hook import PRIORITIES, Hook, get_priority
from .logger_hooks import LoggerHook, TensorboardLoggerHook
from .momentum_update_hook import MomentumUpdateHook
from .odc_hook import ODCHook
from .simsiam_hook import SimSiamHook
from .swav_hook import SwAVHook
from .weight_decay_hook import WeightDecayUpdateHook

__all__ = ["PRIORITIES", "Hook", "get_priority", "MomentumUpdateHook", "DeepClusterHook", "ODCHook", "SimSiamHook",
           "DenseCLHook", "SwAVHook", "EMAHook", "EvalHook", "LoggerHook", "TensorboardLoggerHook", "DINOHook",
           "WeightDecayUpdateHook"]
