"""Vision Transformer backbone: timm's ViT (same parameter names, so timm's and the seed's state dicts
load as they are) with the seed's backbone interface and MAE's masked forward."""
from __future__ import annotations

import io
import re
from typing import Sequence

import torch
from timm.models.beit import Attention as BeitAttention
from timm.models.vision_transformer import VisionTransformer as TimmViT
from torch import nn

from .. import storage
from ..errors import ConfigError, DataError
from ..registry import BACKBONES

ARCHS = {  # DeiT-Ti / ViT-S / ViT-B
    "tiny": dict(embed_dims=192, num_layers=12, num_heads=3, feedforward_channels=768),
    "small": dict(embed_dims=384, num_layers=12, num_heads=6, feedforward_channels=1536),
    "base": dict(embed_dims=768, num_layers=12, num_heads=12, feedforward_channels=3072),
}


def sincos_pos_embed_2d(grid: tuple[int, int], dim: int, cls_token: bool = True) -> torch.Tensor:
    """MAE's / MoCo v3's fixed position embedding [1, (1 +) h*w, dim]: the first half of the channels
    encode the row, the second half the column, each as sin then cos of the position times
    frequencies 1 / 10000^(i / (dim / 4)); the CLS token's row is zeros."""
    if dim % 4:
        raise ConfigError(f"a 2D sin-cos position embedding needs embed_dims divisible by 4, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    rows, cols = torch.meshgrid(torch.arange(grid[0], dtype=torch.float64),
                                torch.arange(grid[1], dtype=torch.float64), indexing="ij")
    parts = []
    for pos in (rows.flatten(), cols.flatten()):
        angle = pos[:, None] * omega[None]
        parts += [angle.sin(), angle.cos()]
    emb = torch.cat(parts, dim=1).float()
    if cls_token:
        emb = torch.cat([torch.zeros(1, dim), emb])
    return emb.unsqueeze(0)


def random_masking(x: torch.Tensor, mask_ratio: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MAE's per-sample random masking of tokens x [B, L, C]: sort uniform noise, keep the first
    L - round(L * mask_ratio). Returns the kept tokens [B, L_keep, C], the mask [B, L] (1 = removed, in
    the original order) and ids_restore [B, L] that puts [kept, removed] back in the original order."""
    b, length, c = x.shape
    keep = length - int(round(length * mask_ratio))
    ids_shuffle = torch.argsort(torch.rand(b, length, device=x.device), dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    kept = torch.gather(x, 1, ids_shuffle[:, :keep, None].expand(-1, -1, c))
    mask = torch.ones(b, length, device=x.device)
    mask[:, :keep] = 0
    return kept, torch.gather(mask, 1, ids_restore), ids_restore


def _arch(arch: str | dict) -> dict:
    if isinstance(arch, str):
        if arch not in ARCHS:
            raise ConfigError(f"VisionTransformer arch {arch!r} is not one of {sorted(ARCHS)} or a dict")
        return ARCHS[arch]
    need = {"embed_dims", "num_layers", "num_heads", "feedforward_channels"}
    if not isinstance(arch, dict) or set(arch) != need:
        raise ConfigError(f"VisionTransformer arch {arch!r}: a dict needs exactly the keys {sorted(need)}")
    return dict(arch)


def read_pretrained(init_cfg: dict, owner: str) -> tuple[str, dict]:
    """(uri, state dict) of `init_cfg=dict(type='Pretrained', checkpoint=<path or s3:// URI>)`, read with
    weights_only; a training checkpoint's `state_dict` / `model` entry, `module.` and (when present) the
    `backbone.` prefix taken off. Errors name the file."""
    cfg = dict(init_cfg)
    if cfg.pop("type", None) != "Pretrained" or "checkpoint" not in cfg:
        raise ConfigError(f"{owner} init_cfg {init_cfg!r}: only dict(type='Pretrained', "
                          f"checkpoint=<path or s3:// URI>) is supported")
    uri = cfg["checkpoint"]
    if not storage.exists(uri):
        raise DataError(f"{owner} pretrained checkpoint not found: {uri}")
    try:
        state = torch.load(io.BytesIO(storage.read_bytes(uri)), map_location="cpu", weights_only=True)
    except Exception as err:  # weights_only refuses anything but tensors and plain containers
        raise DataError(f"{uri} is not a loadable state dict (weights_only=True): {err}") from err
    state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise DataError(f"{uri} holds a {type(state).__name__}, not a state dict")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if any(k.startswith("backbone.") for k in state):
        state = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    return uri, state

# The seed's ViTs (mmcls's VisionTransformer and mmselfsup's CAE layers) name things their own way; the
# same weights under timm's names, applied in order to each key.
_MMCLS_VIT_NAMES = [
    (r"^patch_embed\.projection\.", "patch_embed.proj."),
    (r"^layers\.(\d+)\.ln1\.", r"blocks.\1.norm1."),
    (r"^layers\.(\d+)\.ln2\.", r"blocks.\1.norm2."),
    (r"^layers\.(\d+)\.ffn\.layers\.0\.0\.", r"blocks.\1.mlp.fc1."),
    (r"^layers\.(\d+)\.ffn\.layers\.1\.", r"blocks.\1.mlp.fc2."),
    (r"^layers\.(\d+)\.gamma_(\d)$", r"blocks.\1.ls\2.gamma"),
    (r"^layers\.(\d+)\.attn\.", r"blocks.\1.attn."),
    (r"^ln1\.", "norm."),
]


def rename(state: dict, rules: list[tuple[str, str]]) -> dict:
    """Each key rewritten by the first (regex, replacement) rule that matches it, or kept."""
    out = {}
    for key, value in state.items():
        for pattern, repl in rules:
            key, hits = re.subn(pattern, repl, key)
            if hits:
                break
        out[key] = value
    return out


def vit_from_mmcls(state: dict) -> dict:
    """A seed / mmcls ViT state dict (`patch_embed.projection`, `layers.i.ln1`, `layers.i.ffn.layers.0.0`,
    final `ln1`, CAE's `gamma_1` / `gamma_2` and BEiT-style `attn.q_bias` / `attn.v_bias`) under timm's
    names; any other state dict comes back as it is. q and v biases become timm's one qkv bias with a zero
    key bias: adding the same vector to every key shifts all of a query's logits equally, so the softmax,
    and the layer, are unchanged."""
    if "patch_embed.projection.weight" not in state:
        return state
    state = rename(state, _MMCLS_VIT_NAMES)
    for key in [k for k in state if k.endswith(".attn.q_bias")]:
        q, v = state.pop(key), state.pop(key.replace("q_bias", "v_bias"))
        state[key.replace("q_bias", "qkv.bias")] = torch.cat([q, torch.zeros_like(v), v])
    return state


class RelPosAttention(BeitAttention):
    """BEiT's attention (timm's: q and v biases, no key bias, one relative position bias table per block
    over the patch grid plus the three cls entries), called the way a ViT block calls its attention.
    Loads a plain attention's state dict (see `_qkv_bias_to_q_v`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_load_state_dict_pre_hook(_qkv_bias_to_q_v)

    def forward(self, x: torch.Tensor, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
        if attn_mask is not None or is_causal:
            raise ConfigError("VisionTransformer with use_rel_pos_bias takes no attention mask")
        return super().forward(x)


def _qkv_bias_to_q_v(module: "RelPosAttention", state_dict: dict, prefix: str, *args) -> None:
    """Loading a plain attention's weights (timm's, ours, or the seed's q / v biases merged on loading):
    its single qkv bias becomes q_bias / v_bias, the key part dropped (no attention weight depends on it);
    without a bias table in the checkpoint the fresh one (zeros) stays, as the seed's `-rpe` fine-tuning
    starts a model pre-trained without them."""
    bias = state_dict.pop(prefix + "qkv.bias", None)
    if bias is not None and module.q_bias is not None:
        q, _, v = bias.chunk(3)
        state_dict.setdefault(prefix + "q_bias", q)
        state_dict.setdefault(prefix + "v_bias", v)
    elif bias is not None:
        state_dict[prefix + "qkv.bias"] = bias  # load_state_dict names it: this model has no qkv bias
    state_dict.setdefault(prefix + "relative_position_bias_table",
                          module.relative_position_bias_table.detach().clone())


@BACKBONES.register_module()
class VisionTransformer(TimmViT):
    """timm's ViT without classifier. `forward(x)` gives, per entry of `out_indices` (block indices,
    negative counted from the end), [patch tokens (B, C, H/p, W/p), cls token (B, C)] as the seed's
    mmcls ViT (only the patch tokens when `output_cls_token=False`); the last block's output goes
    through the final `norm`, as timm's `forward_features`.

    frozen_stages: -1 nothing; 0 the patch embedding, cls token and position embedding; i >= 1 also
    blocks 0..i-1 (and the final norm when i = num_layers). stop_grad_conv1: MoCo v3's patch
    projection kept at its random init. sincos_pos_embed: a fixed 2D sin-cos position embedding (MAE,
    MoCo v3) instead of a learnt one. weight_init: timm's mode ('', 'jax', 'moco'). use_rel_pos_bias:
    BEiT's relative position bias in every block (the seed's CAE `-rpe` fine-tuning; inputs at img_size
    only), the attention's other weights as drawn or loaded, the bias tables at zero.
    init_cfg=dict(type='Pretrained', checkpoint=<local path or s3:// URI>) loads a state dict (timm's,
    ours, the seed's mmcls names, or a whole checkpoint whose `backbone.*` keys are taken); classifier
    `head.*` keys are dropped.
    """

    def __init__(self, arch: str | dict = "base", img_size: int = 224, patch_size: int = 16, in_channels: int = 3,
                 out_indices: int | Sequence[int] = -1, drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 qkv_bias: bool = True, frozen_stages: int = -1, stop_grad_conv1: bool = False,
                 output_cls_token: bool = True, sincos_pos_embed: bool = False, weight_init: str = "",
                 use_rel_pos_bias: bool = False, init_cfg: dict | None = None):
        a = _arch(arch)
        if a["feedforward_channels"] % a["embed_dims"]:
            raise ConfigError(f"VisionTransformer: feedforward_channels {a['feedforward_channels']} must be a "
                              f"multiple of embed_dims {a['embed_dims']} (timm's mlp_ratio)")
        if img_size % patch_size:
            raise ConfigError(f"VisionTransformer: img_size {img_size} is not a multiple of patch_size {patch_size}")
        super().__init__(img_size=img_size, patch_size=patch_size, in_chans=in_channels, num_classes=0,
                         global_pool="token", embed_dim=a["embed_dims"], depth=a["num_layers"],
                         num_heads=a["num_heads"], mlp_ratio=a["feedforward_channels"] / a["embed_dims"],
                         qkv_bias=qkv_bias, drop_rate=drop_rate, drop_path_rate=drop_path_rate,
                         weight_init=weight_init, dynamic_img_size=True)
        # dynamic_img_size: other input sizes (DINO's local crops, evaluation at the data's own size)
        # get the position embedding resampled to their grid; img_size is the grid it is stored at.
        self.num_layers, self.embed_dims = a["num_layers"], a["embed_dims"]
        indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        resolved = [i + self.num_layers if i < 0 else i for i in indices]
        if not resolved or any(i not in range(self.num_layers) for i in resolved):
            raise ConfigError(f"VisionTransformer out_indices {out_indices!r} must name blocks in "
                              f"-{self.num_layers}..{self.num_layers - 1}")
        if frozen_stages not in range(-1, self.num_layers + 1):
            raise ConfigError(f"VisionTransformer frozen_stages {frozen_stages!r} must be in -1..{self.num_layers}")
        self.out_indices, self.frozen_stages = tuple(resolved), frozen_stages
        self.output_cls_token = output_cls_token
        self.out_channels = tuple(self.embed_dims for _ in resolved)
        self.use_rel_pos_bias = use_rel_pos_bias
        if use_rel_pos_bias:
            self._add_rel_pos_bias(qkv_bias, drop_rate)
        if sincos_pos_embed:
            self.pos_embed.data.copy_(sincos_pos_embed_2d(self.patch_embed.grid_size, self.embed_dims))
            self.pos_embed.requires_grad = False
        if stop_grad_conv1:  # MoCo v3 (Chen et al. 2021, sec. 5): a random, frozen patch projection,
            proj = self.patch_embed.proj  # drawn as its code does: xavier-uniform over the patch's inputs
            bound = (6.0 / (proj.weight[0].numel() + proj.weight.shape[0])) ** 0.5
            nn.init.uniform_(proj.weight, -bound, bound)
            nn.init.zeros_(proj.bias)
            for p in self.patch_embed.parameters():
                p.requires_grad = False
        if init_cfg is not None:
            self._load_pretrained(init_cfg)
        self._freeze_stages()

    def _add_rel_pos_bias(self, qkv_bias: bool, drop_rate: float) -> None:
        for block in self.blocks:
            old = block.attn
            new = RelPosAttention(self.embed_dims, old.num_heads, qkv_bias=qkv_bias, proj_drop=drop_rate,
                                  window_size=self.patch_embed.grid_size)
            new.load_state_dict(old.state_dict())  # the weights as the init mode drew them
            block.attn = new

    def _load_pretrained(self, init_cfg: dict) -> None:
        uri, state = read_pretrained(init_cfg, "VisionTransformer")
        state = {k: v for k, v in vit_from_mmcls(state).items() if not k.startswith("head.")}
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as err:
            lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
            raise DataError(f"{uri} does not fit VisionTransformer(embed_dims={self.embed_dims}, "
                            f"num_layers={self.num_layers}, img_size={self.patch_embed.img_size}): "
                            f"{' '.join(lines[1:3])[:400]}") from err

    def _frozen_modules(self) -> list[nn.Module]:
        if self.frozen_stages < 0:
            return []
        mods = [self.patch_embed, *self.blocks[:self.frozen_stages]]
        return mods + [self.norm] if self.frozen_stages == self.num_layers else mods

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            self.cls_token.requires_grad = False
            self.pos_embed.requires_grad = False
        for m in self._frozen_modules():
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> "VisionTransformer":
        super().train(mode)
        for m in self._frozen_modules():  # no dropout / drop path in frozen blocks
            m.eval()
        return self

    def _outputs(self, x: torch.Tensor, i: int, grid: tuple[int, int]):
        if i == self.num_layers - 1:
            x = self.norm(x)
        b, _, c = x.shape
        patches = x[:, 1:].transpose(1, 2).reshape(b, c, *grid)
        return [patches, x[:, 0]] if self.output_cls_token else patches

    def forward(self, x: torch.Tensor) -> tuple:
        grid = (x.shape[-2] // self.patch_embed.patch_size[0], x.shape[-1] // self.patch_embed.patch_size[1])
        if self.use_rel_pos_bias and grid != tuple(self.patch_embed.grid_size):
            raise ConfigError(f"VisionTransformer with use_rel_pos_bias: an input of {tuple(x.shape[-2:])} px cuts "
                              f"a {grid} patch grid, the bias tables are for {tuple(self.patch_embed.grid_size)} "
                              f"(img_size)")
        x = self.norm_pre(self.patch_drop(self._pos_embed(self.patch_embed(x))))
        outs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.out_indices:
                outs.append(self._outputs(x, i, grid))
        return tuple(outs)

    def forward_masked(self, x: torch.Tensor, mask_ratio: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """MAE's encoder: only the visible patches (and the cls token) go through the blocks.
        Returns (tokens [B, 1 + L_keep, C] after the final norm, mask [B, L] 1 = removed, ids_restore)."""
        x = self.patch_embed(x)
        if x.ndim == 4:  # NHWC from a dynamic-size patch embedding
            x = x.flatten(1, 2)
        x = x + self.pos_embed[:, 1:]
        x, mask, ids_restore = random_masking(x, mask_ratio)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = self.blocks(torch.cat([cls, x], dim=1))
        return self.norm(x), mask, ids_restore
