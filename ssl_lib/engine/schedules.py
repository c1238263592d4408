"""Learning-rate schedules as pure functions of training progress (the seed's `lr_config`)."""
from __future__ import annotations

import math

from ..errors import ConfigError

POLICIES = ("CosineAnnealing", "StepFixCosineAnnealing", "Step", "Poly", "Exp", "Fixed")


def lr_at(lr_config: dict, base_lr: float, epoch: int, it: int, iters_per_epoch: int, max_epochs: int) -> float:
    """LR for iteration `it` of `epoch` (both 0-based) under `lr_config` (policy + warmup)."""
    cfg = dict(lr_config or {})
    policy = cfg.pop("policy", "Fixed")
    if policy == policy.lower():  # as mmcv: the seed's configs write 'step', 'poly'
        policy = policy.title()
    by_epoch = cfg.pop("by_epoch", True)
    total = max_epochs if by_epoch else max_epochs * iters_per_epoch
    step = epoch if by_epoch else epoch * iters_per_epoch + it
    if policy in ("CosineAnnealing", "StepFixCosineAnnealing"):  # the seed's StepFix is a fix of MMCV's hook
        min_lr = cfg.get("min_lr", 0.0)
        if "min_lr_ratio" in cfg:
            min_lr = base_lr * cfg["min_lr_ratio"]
        lr = min_lr + (base_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * step / total))
    elif policy == "Step":
        steps = cfg.get("step", [])
        steps = [steps] if isinstance(steps, int) else steps
        lr = base_lr * cfg.get("gamma", 0.1) ** sum(step >= s for s in steps)
    elif policy == "Poly":
        min_lr = cfg.get("min_lr", 0.0)
        lr = (base_lr - min_lr) * (1 - step / total) ** cfg.get("power", 1.0) + min_lr
    elif policy == "Exp":
        lr = base_lr * cfg.get("gamma", 0.1) ** step
    elif policy == "Fixed":
        lr = base_lr
    else:
        raise ConfigError(f"lr_config.policy {policy!r} is not supported; use one of {', '.join(POLICIES)}")
    warmup = cfg.get("warmup")
    if warmup:
        warmup_iters = cfg.get("warmup_iters", 0) * (iters_per_epoch if cfg.get("warmup_by_epoch") else 1)
        cur = epoch * iters_per_epoch + it
        if cur < warmup_iters:
            ratio = cfg.get("warmup_ratio", 0.1)
            if warmup == "linear":
                lr *= 1 - (1 - cur / warmup_iters) * (1 - ratio)
            elif warmup == "constant":
                lr *= ratio
            elif warmup == "exp":
                lr *= ratio ** (1 - cur / warmup_iters)
            else:
                raise ConfigError(f"lr_config.warmup {warmup!r} is not supported; use linear, constant or exp")
    return lr
