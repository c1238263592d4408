"""Learning-rate and momentum schedules as pure functions of training progress (the seed's `lr_config`
and `momentum_config`, with mmcv's LR and momentum updater hooks' formulas)."""
from __future__ import annotations

import math
import numbers

from ..errors import ConfigError

POLICIES = ("CosineAnnealing", "StepFixCosineAnnealing", "Step", "Poly", "Exp", "Fixed", "Cyclic")
MOMENTUM_POLICIES = ("CosineAnnealing", "Cyclic")
ANNEAL_STRATEGIES = ("cos", "linear")


def _policy(cfg: dict, key: str, default: str, known: tuple[str, ...]) -> str:
    policy = cfg.pop("policy", default)
    if not isinstance(policy, str) or (policy.title() if policy == policy.lower() else policy) not in known:
        raise ConfigError(f"{key}.policy {policy!r} is not supported; use one of {', '.join(known)}")
    return policy.title() if policy == policy.lower() else policy  # as mmcv: the seed writes 'step', 'cyclic'


def _progress(by_epoch: bool, epoch: int, it: int, iters_per_epoch: int, max_epochs: int,
              max_iters: int | None) -> tuple[int, int]:
    """(step, total): epochs, or iterations when `by_epoch` is False or the runner counts iterations."""
    if max_iters is not None:
        return epoch * iters_per_epoch + it, max_iters
    if by_epoch:
        return epoch, max_epochs
    return epoch * iters_per_epoch + it, max_epochs * iters_per_epoch


def annealing_cos(start: float, end: float, factor: float) -> float:
    """From `start` (factor 0) to `end` (factor 1) along half a cosine."""
    return end + 0.5 * (start - end) * (math.cos(math.pi * factor) + 1)


def annealing_linear(start: float, end: float, factor: float) -> float:
    return start + (end - start) * factor


def cyclic_factor(cfg: dict, key: str, step: int, total: int, default_ratio: tuple[float, float]) -> float:
    """The multiple of the base value at iteration `step` of `total` under mmcv's cyclic policy: each
    of `cyclic_times` cycles anneals from 1 to target_ratio[0] over its first `step_ratio_up` share,
    then to target_ratio[1]; `gamma` < 1 shrinks the swing cycle after cycle."""
    ratio = cfg.get("target_ratio", default_ratio)
    if isinstance(ratio, numbers.Real) and not isinstance(ratio, bool):
        ratio = (ratio, ratio / 1e5)
    elif isinstance(ratio, (tuple, list)) and len(ratio) == 1:
        ratio = (ratio[0], ratio[0] / 1e5)
    if not (isinstance(ratio, (tuple, list)) and len(ratio) == 2
            and all(isinstance(r, numbers.Real) and not isinstance(r, bool) for r in ratio)):
        raise ConfigError(f"{key}.target_ratio = {cfg.get('target_ratio')!r}: must be a number or a tuple of two")
    times, up, gamma = cfg.get("cyclic_times", 1), cfg.get("step_ratio_up", 0.4), cfg.get("gamma", 1)
    strategy = cfg.get("anneal_strategy", "cos")
    if strategy not in ANNEAL_STRATEGIES:
        raise ConfigError(f"{key}.anneal_strategy = {strategy!r}: use one of {', '.join(ANNEAL_STRATEGIES)}")
    if not 0 <= up < 1:
        raise ConfigError(f"{key}.step_ratio_up = {up!r}: must be in [0, 1)")
    if not 0 < gamma <= 1:
        raise ConfigError(f"{key}.gamma = {gamma!r}: must be in (0, 1]")
    if cfg.get("by_epoch", False):
        raise ConfigError(f"{key}.by_epoch = True: the Cyclic policy counts iterations (by_epoch=False), as mmcv's")
    per_cycle = total // times if isinstance(times, int) and times > 0 else 0
    if per_cycle < 1:
        raise ConfigError(f"{key}.cyclic_times = {times!r}: must be a positive int, at most the {total} "
                          f"training iterations")
    up_iters = int(up * per_cycle)
    cur, scale = step % per_cycle, gamma ** (step // per_cycle)
    anneal = annealing_cos if strategy == "cos" else annealing_linear
    if cur < up_iters:
        return anneal(1, 1 - scale + ratio[0] * scale, cur / up_iters)
    return anneal(1 - scale + ratio[0] * scale, ratio[1], (cur - up_iters) / (per_cycle - up_iters))


def lr_at(lr_config: dict, base_lr: float, epoch: int, it: int, iters_per_epoch: int, max_epochs: int,
          max_iters: int | None = None) -> float:
    """LR for iteration `it` of `epoch` (both 0-based) under `lr_config` (policy + warmup).

    `max_iters` is the iteration runner's length: `it` then counts from the start of training (epoch
    0) and every policy counts iterations up to `max_iters`, whatever `by_epoch` says.
    """
    cfg = dict(lr_config or {})
    policy = _policy(cfg, "lr_config", "Fixed", POLICIES)
    by_epoch = False if policy == "Cyclic" else cfg.get("by_epoch", True)
    step, total = _progress(by_epoch, epoch, it, iters_per_epoch, max_epochs, max_iters)
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
    elif policy == "Cyclic":
        lr = base_lr * cyclic_factor(cfg, "lr_config", step, total, (10, 1e-4))
    else:
        lr = base_lr
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


def momentum_at(momentum_config: dict, base_momentum: float, epoch: int, it: int, iters_per_epoch: int,
                max_epochs: int, max_iters: int | None = None) -> float:
    """The optimizer momentum (SGD's `momentum`, Adam's `betas[0]`) at iteration `it` of `epoch` under
    `momentum_config`, as mmcv's CosineAnnealing / Cyclic momentum updater hooks; progress as lr_at."""
    cfg = dict(momentum_config)
    policy = _policy(cfg, "momentum_config", "", MOMENTUM_POLICIES)
    if cfg.get("warmup"):
        raise ConfigError(f"momentum_config.warmup = {cfg['warmup']!r}: momentum warm-up is not supported")
    if policy == "Cyclic":
        step, total = _progress(False, epoch, it, iters_per_epoch, max_epochs, max_iters)
        return base_momentum * cyclic_factor(cfg, "momentum_config", step, total, (0.85 / 0.95, 1))
    if ("min_momentum" in cfg) == ("min_momentum_ratio" in cfg):
        raise ConfigError("momentum_config: the CosineAnnealing policy takes one of min_momentum and "
                          "min_momentum_ratio")
    step, total = _progress(cfg.get("by_epoch", True), epoch, it, iters_per_epoch, max_epochs, max_iters)
    end = base_momentum * cfg["min_momentum_ratio"] if "min_momentum_ratio" in cfg else cfg["min_momentum"]
    return annealing_cos(base_momentum, end, step / total)
