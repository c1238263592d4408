"""Optimizers (torch.optim's and LARS, with the seed's `paramwise_options` and, for fine-tuning a ViT,
its layer-wise lr decay `constructor='TransformerFinetuneConstructor'`) and the optimizer step of
the seed's `optimizer_config` and `fp16` settings: gradient clipping, gradient accumulation
(`update_interval`), layers frozen for their first iterations (`frozen_layers_cfg`), and mixed
precision with a loss scaler."""
from __future__ import annotations

import re

import torch

from ..errors import ConfigError

# The seed's optimizer hooks; here one step serves them all (DDP reduces the gradients itself).
OPTIMIZER_HOOKS = ("OptimizerHook", "DistOptimizerHook", "Fp16OptimizerHook", "GradAccumFp16OptimizerHook")
_HOOK_KEYS = {"type", "grad_clip", "update_interval", "frozen_layers_cfg", "coalesce", "bucket_size_mb"}


class LARS(torch.optim.Optimizer):
    """SGD with layer-wise adaptive rate scaling (You, Gitman and Ginsburg, 2017, Algorithm 1): each
    tensor's step is scaled by eta * |w| / (|g| + weight_decay * |w|). A parameter group with
    `lars_exclude=True` (biases and norms, usually) takes plain SGD steps."""

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0, dampening: float = 0.0,
                 eta: float = 1e-3, nesterov: bool = False, eps: float = 1e-8):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ConfigError("LARS: nesterov needs momentum > 0 and dampening 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, dampening=dampening,
                                      eta=eta, nesterov=nesterov, eps=eps, lars_exclude=False))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            wd, momentum = group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad.add(p, alpha=wd) if wd else p.grad.clone()
                if not group["lars_exclude"]:
                    w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(p.grad)
                    trust = group["eta"] * w_norm / (g_norm + wd * w_norm + group["eps"])
                    d_p.mul_(torch.where((w_norm > 0) & (g_norm > 0), trust, torch.ones_like(trust)))
                if momentum:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = d_p.clone()
                    else:
                        state["momentum_buffer"].mul_(momentum).add_(d_p, alpha=1 - group["dampening"])
                    buf = state["momentum_buffer"]
                    d_p = d_p.add(buf, alpha=momentum) if group["nesterov"] else buf
                p.add_(d_p, alpha=-group["lr"])
        return loss


OPTIMIZERS = {"LARS": LARS}


def param_groups(model: torch.nn.Module, defaults: dict, paramwise_options: dict | None) -> list[dict]:
    """One group per parameter with the overrides of every `paramwise_options` regex that its name
    matches (re.search, in order); a `<key>_mult` entry multiplies the optimizer's `<key>`."""
    groups = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        group = {"params": [param]}
        for pattern, options in (paramwise_options or {}).items():
            if re.search(pattern, name):
                for key, value in options.items():
                    if key.endswith("_mult"):
                        key = key[:-len("_mult")]
                        if key not in defaults:
                            raise ConfigError(f"optimizer.paramwise_options[{pattern!r}]: {key}_mult needs "
                                              f"optimizer.{key}")
                        value = defaults[key] * value
                    group[key] = value
        groups.append(group)
    return groups


CONSTRUCTORS = ("DefaultOptimizerConstructor", "TransformerFinetuneConstructor")
_VIT_BLOCK = re.compile(r"(?:^|\.)blocks\.(\d+)\.")
_VIT_EMBED = re.compile(r"(?:^|\.)(cls_token|pos_embed|mask_token)$|(?:^|\.)patch_embed\.")
_NO_DECAY_TOKENS = ("pos_embed", "cls_token", "mask_token", "relative_position_bias_table")
_SWIN_BLOCK = re.compile(r"(?:^|\.)layers\.(\d+)\.blocks\.(\d+)\.")
_SWIN_DOWN = re.compile(r"(?:^|\.)layers\.(\d+)\.downsample\.")
_SWIN_EMBED = re.compile(r"(?:^|\.)(mask_token|absolute_pos_embed)$|(?:^|\.)patch_embed\.")
MODEL_TYPES = ("vit", "swin")


def vit_layer_id(name: str, num_layers: int) -> int:
    """BEiT's / MAE's layer of a ViT parameter: 0 for the embeddings (cls token, position embedding,
    patch embedding, mask token), i + 1 for blocks.i, num_layers + 1 for the rest (final norm, head)."""
    block = _VIT_BLOCK.search(name)
    if block:
        return int(block.group(1)) + 1
    return 0 if _VIT_EMBED.search(name) else num_layers + 1


def swin_layer_id(name: str, depths: list[int]) -> int:
    """SimMIM's layer of a Swin parameter: 0 for the patch embedding and mask token, sum(depths[:i]) + j + 1
    for layers.i.blocks.j, sum(depths) + 1 for the rest (final norm, head). A patch merging counts as the
    last block before it (timm places stage i's merging at its start, SimMIM's Swin at the end of i - 1)."""
    block = _SWIN_BLOCK.search(name)
    if block:
        return sum(depths[:int(block.group(1))]) + int(block.group(2)) + 1
    down = _SWIN_DOWN.search(name)
    if down:
        return sum(depths[:int(down.group(1))])
    return 0 if _SWIN_EMBED.search(name) else sum(depths) + 1


def _layer_ids(named: list[tuple[str, torch.Tensor]], model_type: str) -> tuple[list[int], int]:
    """Each parameter's layer id and the number of layers (the head's id is that + 1)."""
    if model_type == "vit":
        blocks = [int(m.group(1)) for n, _ in named if (m := _VIT_BLOCK.search(n))]
        if not blocks:
            raise ConfigError("optimizer.layer_decay: the model has no trainable 'blocks.<i>.' parameters (not a ViT?)")
        num_layers = max(blocks) + 1
        return [vit_layer_id(n, num_layers) for n, _ in named], num_layers
    depths: dict[int, int] = {}
    for n, _ in named:
        if m := _SWIN_BLOCK.search(n):
            depths[int(m.group(1))] = max(depths.get(int(m.group(1)), 0), int(m.group(2)) + 1)
    if not depths:
        raise ConfigError("optimizer.layer_decay: the model has no trainable 'layers.<i>.blocks.<j>.' parameters "
                          "(not a Swin?)")
    per_stage = [depths.get(i, 0) for i in range(max(depths) + 1)]
    return [swin_layer_id(n, per_stage) for n, _ in named], sum(per_stage)


def layer_decay_groups(model: torch.nn.Module, defaults: dict, layer_decay: float, model_type: str) -> list[dict]:
    """The seed's TransformerFinetuneConstructor: one group per trainable parameter with lr scaled by
    layer_decay ** (num_layers + 1 - layer_id), so the head learns at the full lr and the patch
    embedding at the smallest; no weight decay on 1-d tensors (norms, biases) and on the position
    embedding, cls and mask tokens."""
    if model_type not in MODEL_TYPES:
        raise ConfigError(f"optimizer.model_type {model_type!r}: layer-wise lr decay is implemented for "
                          f"{' and '.join(map(repr, MODEL_TYPES))}")
    if not 0 < layer_decay <= 1:
        raise ConfigError(f"optimizer.layer_decay must be in (0, 1], got {layer_decay}")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    layer_ids, num_layers = _layer_ids(named, model_type)
    groups = []
    for (name, param), layer_id in zip(named, layer_ids):
        scale = layer_decay ** (num_layers + 1 - layer_id)
        no_decay = param.ndim == 1 or name.endswith(_NO_DECAY_TOKENS)
        groups.append({"params": [param], "name": name, "layer_id": layer_id, "lr_scale": scale,
                       "lr": defaults["lr"] * scale,
                       "weight_decay": 0.0 if no_decay else defaults.get("weight_decay", 0.0)})
    return groups


def _apply_paramwise(groups: list[dict], defaults: dict, paramwise_options: dict) -> None:
    """Override each group (named) with every `paramwise_options` entry whose regex its name matches;
    unlike `param_groups` (the seed's: a `_mult` of the optimizer's value), a `_mult` here scales the
    group's own value, the lr already scaled for its layer."""
    for group in groups:
        for pattern, options in paramwise_options.items():
            if re.search(pattern, group["name"]):
                for key, value in options.items():
                    if key.endswith("_mult"):
                        key = key[:-len("_mult")]
                        if key not in defaults:
                            raise ConfigError(f"optimizer.paramwise_options[{pattern!r}]: {key}_mult needs "
                                              f"optimizer.{key}")
                        value = group.get(key, defaults[key]) * value
                    group[key] = value


def build_optimizer(cfg: dict, model: torch.nn.Module) -> torch.optim.Optimizer:
    cfg = dict(cfg)
    name = cfg.pop("type", "SGD")
    paramwise = cfg.pop("paramwise_options", None)
    constructor = cfg.pop("constructor", "DefaultOptimizerConstructor")
    if constructor not in CONSTRUCTORS:
        raise ConfigError(f"optimizer.constructor {constructor!r} is not one of {', '.join(CONSTRUCTORS)}")
    layer_decay, model_type = cfg.pop("layer_decay", None), cfg.pop("model_type", None)
    if (constructor == "TransformerFinetuneConstructor") != (layer_decay is not None):
        raise ConfigError("optimizer: constructor='TransformerFinetuneConstructor' and layer_decay go together "
                          "(e.g. layer_decay=0.65, model_type='vit')")
    cls = OPTIMIZERS.get(name) or getattr(torch.optim, name, None)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ConfigError(f"optimizer.type {name!r} is neither a torch.optim optimizer nor one of {sorted(OPTIMIZERS)}")
    if layer_decay is not None:
        params = layer_decay_groups(model, cfg, layer_decay, model_type or "vit")
        _apply_paramwise(params, cfg, paramwise or {})
    elif paramwise:
        params = param_groups(model, cfg, paramwise)
    else:
        params = [p for p in model.parameters() if p.requires_grad]
    try:
        return cls(params, **cfg)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"optimizer {name}: {err}") from err


class OptimizerStep:
    """Backward of one iteration's loss, and every `update_interval` iterations the update.

    `optimizer_config`: dict(grad_clip=dict(max_norm=35, norm_type=2), update_interval=4,
    frozen_layers_cfg={'backbone.patch_embed': 5000}) as in the seed. `fp16`: dict(loss_scale=512.)
    (a static scale) or dict(loss_scale='dynamic'): the forward runs under autocast to float16 and the
    loss is scaled; the scaler's state goes into checkpoints. dict(dtype='bfloat16') autocasts to
    bfloat16 instead, which needs no scaling.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, model: torch.nn.Module, device: torch.device,
                 optimizer_config: dict | None = None, fp16: dict | None = None):
        cfg = dict(optimizer_config or {})
        unknown = set(cfg) - _HOOK_KEYS
        if unknown:
            raise ConfigError(f"optimizer_config: unknown key(s) {sorted(unknown)}; known: {sorted(_HOOK_KEYS)}")
        if cfg.get("type", "OptimizerHook") not in OPTIMIZER_HOOKS:
            raise ConfigError(f"optimizer_config.type {cfg['type']!r} is not one of {', '.join(OPTIMIZER_HOOKS)}")
        self.optimizer, self.model, self.device = optimizer, model, device
        self.grad_clip = cfg.get("grad_clip") or None
        self.update_interval = int(cfg.get("update_interval", 1))
        if self.update_interval < 1:
            raise ConfigError(f"optimizer_config.update_interval must be >= 1, got {self.update_interval}")
        self.frozen = dict(cfg.get("frozen_layers_cfg") or {})
        fp16 = None if fp16 is None else dict(fp16)
        self.amp = fp16 is not None
        dtype = (fp16 or {}).pop("dtype", "float16")
        scale = (fp16 or {}).pop("loss_scale", "dynamic")
        if fp16:
            raise ConfigError(f"fp16: unknown key(s) {sorted(fp16)}; known: dtype, loss_scale")
        if dtype not in ("float16", "bfloat16"):
            raise ConfigError(f"fp16.dtype must be 'float16' or 'bfloat16', got {dtype!r}")
        if self.amp and scale != "dynamic" and not (isinstance(scale, (int, float)) and scale > 0):
            raise ConfigError(f"fp16.loss_scale must be 'dynamic' or a positive number, got {scale!r}")
        self.dtype = getattr(torch, dtype)
        # bfloat16 has float32's range: no loss scaling. A static scale still backs off on overflow.
        growth = {} if scale == "dynamic" else dict(init_scale=float(scale), growth_interval=2 ** 31 - 1)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp and self.dtype == torch.float16, **growth)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.amp)

    def __call__(self, loss: torch.Tensor, global_iter: int) -> bool:
        """Backward `loss` (iteration `global_iter`, 0-based); True when the weights were updated."""
        self.scaler.scale(loss / self.update_interval).backward()
        if (global_iter + 1) % self.update_interval:
            return False
        for prefix, iters in self.frozen.items():
            if global_iter < iters:
                for name, param in self.model.named_parameters():
                    if name.startswith(prefix):
                        param.grad = None
        if self.grad_clip:
            self.scaler.unscale_(self.optimizer)
            params = [p for p in self.model.parameters() if p.grad is not None]
            if params:
                torch.nn.utils.clip_grad_norm_(params, **self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return True

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler.is_enabled() else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scaler.is_enabled() and state:
            self.scaler.load_state_dict(state)
