"""Swin Transformer backbone: timm's Swin (same parameter names, so a timm state dict loads as it is) with
the seed's backbone interface and SimMIM's masked forward (the seed's SimMIMSwinTransformer)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from timm.models.swin_transformer import SwinTransformer as TimmSwin
from torch import nn

from ..errors import ConfigError, DataError
from ..registry import BACKBONES
from .vit import read_pretrained, rename

ARCHS = {  # Liu et al. 2021, table 1 (Swin-T / S / B)
    "tiny": dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    "small": dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    "base": dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
}
_ALIASES = {"t": "tiny", "s": "small", "b": "base"}  # the seed's configs say arch='B'


def _arch(arch: str | dict) -> dict:
    if isinstance(arch, str):
        name = _ALIASES.get(arch.lower(), arch.lower())
        if name not in ARCHS:
            raise ConfigError(f"SwinTransformer arch {arch!r} is not one of {sorted(ARCHS)} or a dict")
        return ARCHS[name]
    need = {"embed_dims", "depths", "num_heads"}
    if not isinstance(arch, dict) or set(arch) != need:
        raise ConfigError(f"SwinTransformer arch {arch!r}: a dict needs exactly the keys {sorted(need)}")
    depths, heads = tuple(arch["depths"]), tuple(arch["num_heads"])
    if not depths or len(depths) != len(heads):
        raise ConfigError(f"SwinTransformer arch: depths {list(depths)} and num_heads {list(heads)} need one "
                          f"entry per stage each")
    return dict(embed_dims=int(arch["embed_dims"]), depths=depths, num_heads=heads)


_MMCLS_SWIN_NAMES = [  # the seed's (mmcls's) Swin names -> timm's, applied in order to each key
    (r"^patch_embed\.projection\.", "patch_embed.proj."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.attn\.w_msa\.", r"layers.\1.blocks.\2.attn."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.ffn\.layers\.0\.0\.", r"layers.\1.blocks.\2.mlp.fc1."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.ffn\.layers\.1\.", r"layers.\1.blocks.\2.mlp.fc2."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.", r"layers.\1.blocks.\2."),
]


def _unfold_to_timm_order(channels: int) -> torch.Tensor:
    """mmcls's patch merging flattens each 2 x 2 neighbourhood with nn.Unfold (index c * 4 + dy * 2 + dx);
    timm's concatenates the four pixels (index dx * 2C + dy * C + c). Entry t of the result is the mmcls
    index of timm's channel t."""
    c = channels // 4
    return torch.tensor([ch * 4 + dy * 2 + dx for dx in range(2) for dy in range(2) for ch in range(c)])


def swin_from_mmcls(state: dict, num_stages: int) -> dict:
    """A seed / mmcls Swin state dict (`stages.i.blocks.j.attn.w_msa.*`, `ffn.layers.*`, the patch merging
    at the end of stage i as `stages.i.downsample`, the output norms `norm<i>`) under timm's names (the
    merging at the start of stage i + 1, its 4C channels reordered; the last stage's norm as `norm`; the
    norms of other stages have no place in timm's model and are dropped). Any other state dict comes back
    as it is."""
    if "patch_embed.projection.weight" not in state:
        return state
    out = {}
    for key, value in rename(state, _MMCLS_SWIN_NAMES).items():
        if key.startswith("stages.") and ".downsample." in key:
            stage, rest = key[len("stages."):].split(".downsample.")
            order = _unfold_to_timm_order(value.shape[-1])
            value = value[:, order] if rest == "reduction.weight" else value[order]
            key = f"layers.{int(stage) + 1}.downsample.{rest}"
        elif key.startswith(f"norm{num_stages - 1}."):
            key = "norm." + key.split(".", 1)[1]
        elif key.startswith("norm") and key[4:5].isdigit():
            continue
        out[key] = value
    return out


def _resize_bias_tables(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """The seed fine-tunes SimMIM's Swin (192 px, windows of 6) at 224 px with windows of 7: a relative
    position bias table written for another window, ((2w - 1)^2, heads), is resampled bicubically to this
    model's window, as mmcls's Swin does on loading."""
    for name, param in module.named_parameters():
        key = prefix + name
        table = state_dict.get(key)
        if name.endswith("relative_position_bias_table") and table is not None and table.shape != param.shape:
            old, new = round(table.shape[0] ** 0.5), round(param.shape[0] ** 0.5)
            if old * old != table.shape[0] or table.shape[1] != param.shape[1]:
                continue  # not a square window or other heads: load_state_dict names the mismatch
            grid = table.T.reshape(1, -1, old, old).float()
            resized = F.interpolate(grid, size=(new, new), mode="bicubic", align_corners=False)
            state_dict[key] = resized.reshape(-1, new * new).T.to(table.dtype)


@BACKBONES.register_module()
class SwinTransformer(TimmSwin):
    """timm's Swin without classifier. `forward(x)` gives one (B, C_i, H_i, W_i) map per entry of
    `out_indices` (stages, negative counted from the end; stage i is H/(patch_size * 2^i) on a side with
    embed_dims * 2^i channels); the last stage's map goes through the final `norm`, as timm's
    `forward_features`, the others are taken as the stage leaves them.

    `forward(x, mask)`: SimMIM's encoder. `mask` (B, H/p, W/p), 1 = masked: those patch embeddings are
    replaced by the learnable `mask_token` (present with `use_mask_token=True`) before the stages.

    frozen_stages: -1 nothing; 0 the patch embedding (and mask token); i >= 1 also stages 0..i-1 (timm's
    stage i starts with the patch merging that halves the map; with i = the number of stages, the final
    norm too). init_cfg=dict(type='Pretrained', checkpoint=<local path or s3:// URI>) loads a state dict
    (timm's, ours, the seed's mmcls names, or a whole checkpoint whose `backbone.*` keys are taken); a classifier `head.*` and a
    mask token the model has no use for are dropped; relative position bias tables of another window size
    are resampled to this one's (on any load_state_dict).
    """

    def __init__(self, arch: str | dict = "tiny", img_size: int = 224, patch_size: int = 4, in_channels: int = 3,
                 window_size: int = 7, drop_rate: float = 0.0, drop_path_rate: float = 0.1,
                 out_indices: int | Sequence[int] = (3,), frozen_stages: int = -1, use_mask_token: bool = False,
                 init_cfg: dict | None = None):
        a = _arch(arch)
        stages = len(a["depths"])
        if img_size % (patch_size * 2 ** (stages - 1)):
            # every patch merging must halve the map exactly, or SimMIM's decoder cannot give the image back
            raise ConfigError(f"SwinTransformer: img_size {img_size} is not a multiple of patch_size {patch_size} "
                              f"x 2^{stages - 1} (the patch mergings of {stages} stages)")
        super().__init__(img_size=img_size, patch_size=patch_size, in_chans=in_channels, num_classes=0,
                         embed_dim=a["embed_dims"], depths=a["depths"], num_heads=a["num_heads"],
                         window_size=window_size, drop_rate=drop_rate, drop_path_rate=drop_path_rate)
        self.embed_dims, self.depths = a["embed_dims"], a["depths"]
        indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        resolved = [i + stages if i < 0 else i for i in indices]
        if not resolved or any(i not in range(stages) for i in resolved):
            raise ConfigError(f"SwinTransformer out_indices {out_indices!r} must name stages in "
                              f"-{stages}..{stages - 1}")
        if frozen_stages not in range(-1, stages + 1):
            raise ConfigError(f"SwinTransformer frozen_stages {frozen_stages!r} must be in -1..{stages}")
        self.out_indices, self.frozen_stages = tuple(resolved), frozen_stages
        self.out_channels = tuple(self.embed_dims * 2 ** i for i in resolved)
        self.mask_token = None
        if use_mask_token:
            self.mask_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims))
            nn.init.trunc_normal_(self.mask_token, std=0.02)  # SimMIM's init
        self.register_load_state_dict_pre_hook(_resize_bias_tables)
        if init_cfg is not None:
            self._load_pretrained(init_cfg)
        self._freeze_stages()

    def _load_pretrained(self, init_cfg: dict) -> None:
        uri, state = read_pretrained(init_cfg, "SwinTransformer")
        state = swin_from_mmcls(state, len(self.layers))
        # older timm versions saved the index and mask buffers that are now rebuilt from the shapes
        drop = ("head.",) if self.mask_token is not None else ("head.", "mask_token")
        state = {k: v for k, v in state.items() if not k.startswith(drop)
                 and not k.endswith(("relative_position_index", "attn_mask"))}
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as err:
            lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
            raise DataError(f"{uri} does not fit SwinTransformer(embed_dims={self.embed_dims}, "
                            f"depths={list(self.depths)}, img_size={self.patch_embed.img_size}): "
                            f"{' '.join(lines[1:3])[:400]}") from err

    def _frozen_modules(self) -> list[nn.Module]:
        if self.frozen_stages < 0:
            return []
        mods = [self.patch_embed, *self.layers[:self.frozen_stages]]
        return mods + [self.norm] if self.frozen_stages == len(self.layers) else mods

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0 and self.mask_token is not None:
            self.mask_token.requires_grad = False
        for m in self._frozen_modules():
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> "SwinTransformer":
        super().train(mode)
        for m in self._frozen_modules():  # no dropout / drop path in frozen stages
            m.eval()
        return self

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        x = self.patch_embed(x)  # (B, H/p, W/p, C)
        if mask is not None:
            if self.mask_token is None:
                raise ConfigError("SwinTransformer got a mask but has no mask token; set use_mask_token=True "
                                  "in model.backbone")
            if tuple(mask.shape) != tuple(x.shape[:3]):
                raise ConfigError(f"SwinTransformer: a mask of shape {tuple(mask.shape)} for a patch grid of "
                                  f"{tuple(x.shape[1:3])}: the mask generator's input_size / model_patch_size "
                                  f"must give the backbone's img_size / patch_size")
            w = mask.unsqueeze(-1).to(x.dtype)
            x = x * (1.0 - w) + self.mask_token.to(x.dtype) * w
        outs = []
        for i, stage in enumerate(self.layers):
            x = stage(x)
            if i in self.out_indices:
                out = self.norm(x) if i == len(self.layers) - 1 else x
                outs.append(out.permute(0, 3, 1, 2).contiguous())
        return tuple(outs)
