"""The ViT backbone (timm's weights and features, the seed's options, MAE's masking) and the layer-wise
lr decay / no-decay parameter groups of the optimizer."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer as TimmViT
from torch import nn

from ssl_lib.engine.optimizer import build_optimizer
from ssl_lib.errors import ConfigError, DataError
from ssl_lib.models import CAEViT, VisionTransformer
from ssl_lib.models.vit import ARCHS, random_masking, sincos_pos_embed_2d

TINY = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)


def tiny_vit(**kw) -> VisionTransformer:
    return VisionTransformer(**{"arch": TINY, "img_size": 32, "patch_size": 4, **kw})


def test_a_state_dict_written_by_timm_loads_strictly_and_gives_timms_features(tmp_path):
    torch.manual_seed(0)
    timm_vit = TimmViT(img_size=32, patch_size=4, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0,
                       num_classes=10).eval()
    torch.save(timm_vit.state_dict(), tmp_path / "timm.pth")  # with its classifier head.*, dropped on load
    ours = tiny_vit(out_indices=(0, -1), init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "timm.pth")))
    ours.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        (patch0, cls0), (patch, cls) = ours(x)
        expected = timm_vit.forward_features(x)
        after_block0 = timm_vit.blocks[0](timm_vit._pos_embed(timm_vit.patch_embed(x)))
    assert patch.shape == (2, 32, 8, 8) and cls.shape == (2, 32)
    torch.testing.assert_close(cls, expected[:, 0])
    torch.testing.assert_close(patch.flatten(2).transpose(1, 2), expected[:, 1:])
    torch.testing.assert_close(cls0, after_block0[:, 0])  # an inner block: no final norm
    assert set(ours.state_dict()) == {k for k in timm_vit.state_dict() if not k.startswith("head.")}


def mmcls_names(timm_state: dict) -> dict:
    """The seed's (mmcls 0.x / mmpretrain) ViT key for each of timm's, written out by hand."""
    table = {"patch_embed.proj": "patch_embed.projection", "norm": "ln1", "norm1": "ln1", "norm2": "ln2",
             "mlp.fc1": "ffn.layers.0.0", "mlp.fc2": "ffn.layers.1", "ls1": "gamma_1", "ls2": "gamma_2"}
    out = {}
    for key, value in timm_state.items():
        prefix, rest = "", key
        if key.startswith("blocks."):
            _, i, rest = key.split(".", 2)
            prefix = f"layers.{i}."
        part, _, leaf = rest.rpartition(".")
        if not part:  # cls_token, pos_embed
            name = leaf
        else:
            name = table[part] if leaf == "gamma" else f"{table.get(part, part)}.{leaf}"
        out[prefix + name] = value
    return out


def test_a_seed_vit_checkpoint_in_mmcls_names_loads_and_gives_the_same_features(tmp_path):
    # CAE's layers: layer scale (gamma_1 / gamma_2) and BEiT's q / v biases without a key bias
    torch.manual_seed(0)
    source = CAEViT(arch=TINY, img_size=32, patch_size=4, init_values=0.1).eval()
    with torch.no_grad():
        for p in source.parameters():
            p.normal_(0, 0.3)
    seed_state = {}
    for key, value in mmcls_names(source.state_dict()).items():
        if key.endswith("attn.qkv.bias"):  # the seed keeps q and v biases apart and has no key bias
            q, _, v = value.chunk(3)
            seed_state[key.replace("qkv.bias", "q_bias")], seed_state[key.replace("qkv.bias", "v_bias")] = q, v
        else:
            seed_state[key] = value
    assert "layers.1.ffn.layers.0.0.weight" in seed_state and "ln1.bias" in seed_state
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in seed_state.items()}}, tmp_path / "cae_seed.pth")
    loaded = CAEViT(arch=TINY, img_size=32, patch_size=4, init_values=0.1,
                    init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "cae_seed.pth"))).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        (patch, cls), = loaded(x)
        (patch_ref, cls_ref), = source(x)
    # a key bias only shifts each query's logits by one constant: the softmax does not see it
    torch.testing.assert_close(cls, cls_ref)
    torch.testing.assert_close(patch, patch_ref)
    c = TINY["embed_dims"]
    torch.testing.assert_close(loaded.blocks[0].attn.qkv.bias[c:2 * c], torch.zeros(c))
    torch.testing.assert_close(loaded.blocks[1].ls2.gamma, source.blocks[1].ls2.gamma)


def test_relative_position_bias_blocks_load_a_plain_vit_and_start_as_it_then_add_beits_bias_per_pair():
    torch.manual_seed(0)
    plain = tiny_vit(img_size=16).eval()
    with torch.no_grad():
        for p in plain.parameters():
            p.normal_(0, 0.3)
    torch.manual_seed(1)
    drawn = tiny_vit(img_size=16)
    torch.manual_seed(1)
    rpe = tiny_vit(img_size=16, use_rel_pos_bias=True).eval()
    # the attention weights as the init mode drew them, the q / v thirds of the bias kept
    assert torch.equal(rpe.blocks[1].attn.qkv.weight, drawn.blocks[1].attn.qkv.weight)
    assert torch.equal(rpe.blocks[1].attn.proj.weight, drawn.blocks[1].attn.proj.weight)
    assert torch.equal(rpe.blocks[1].attn.v_bias, drawn.blocks[1].attn.qkv.bias.chunk(3)[2])
    keys = set(rpe.state_dict())
    assert {"blocks.0.attn.q_bias", "blocks.0.attn.v_bias", "blocks.1.attn.relative_position_bias_table"} <= keys
    assert "blocks.0.attn.qkv.bias" not in keys
    rpe.load_state_dict(plain.state_dict(), strict=True)  # qkv bias split, fresh (zero) bias tables
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(rpe(x)[0][1], plain(x)[0][1])  # zero tables, a key bias that never mattered
    # BEiT's table: (2W - 1)^2 patch offsets (row offset major), then cls -> patch, patch -> cls, cls -> cls
    w = 4
    rows, cols = torch.div(torch.arange(w * w), w, rounding_mode="floor"), torch.arange(w * w) % w
    index = torch.empty(w * w + 1, w * w + 1, dtype=torch.long)
    index[1:, 1:] = (rows[:, None] - rows[None] + w - 1) * (2 * w - 1) + (cols[:, None] - cols[None] + w - 1)
    size = (2 * w - 1) ** 2 + 3
    index[0, :], index[:, 0], index[0, 0] = size - 3, size - 2, size - 1
    attn = rpe.blocks[0].attn
    assert attn.relative_position_bias_table.shape == (size, 2)
    assert torch.equal(attn.relative_position_index, index)
    with torch.no_grad():
        attn.relative_position_bias_table.normal_()
        h = rpe.norm_pre(rpe._pos_embed(rpe.patch_embed(x)))
        out = attn(rpe.blocks[0].norm1(h))
        q, k, v = F.linear(rpe.blocks[0].norm1(h), attn.qkv.weight,
                           torch.cat([attn.q_bias, torch.zeros_like(attn.q_bias), attn.v_bias])
                           ).reshape(2, -1, 3, 2, 16).permute(2, 0, 3, 1, 4)
        bias = attn.relative_position_bias_table[index].permute(2, 0, 1)
        weights = (q @ k.transpose(-1, -2) / 4.0 + bias).softmax(-1)
        expected = attn.proj((weights @ v).transpose(1, 2).reshape(2, -1, 32))
    torch.testing.assert_close(out, expected)
    with pytest.raises(ConfigError, match=r"use_rel_pos_bias: an input of \(32, 32\) px cuts a \(8, 8\) patch grid"):
        rpe(torch.randn(1, 3, 32, 32))


def test_a_missing_or_mismatching_pretrained_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"pretrained checkpoint not found: .*nope\.pth"):
        tiny_vit(init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "nope.pth")))
    torch.save(tiny_vit(arch=dict(TINY, embed_dims=64, feedforward_channels=128)).state_dict(), tmp_path / "w64.pth")
    with pytest.raises(DataError, match=r"w64\.pth does not fit VisionTransformer\(embed_dims=32"):
        tiny_vit(init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "w64.pth")))


def test_arch_presets_are_deit_tiny_vit_small_and_base():
    assert {k: tuple(v.values()) for k, v in ARCHS.items()} == {
        "tiny": (192, 12, 3, 768), "small": (384, 12, 6, 1536), "base": (768, 12, 12, 3072)}
    with torch.device("meta"):
        vit = VisionTransformer(arch="small", img_size=224, patch_size=16)
    assert len(vit.blocks) == 12 and vit.blocks[0].attn.num_heads == 6 and vit.pos_embed.shape == (1, 197, 384)
    assert vit.out_channels == (384,) and vit.out_indices == (11,)
    with pytest.raises(ConfigError, match=r"arch 'huge' is not one of"):
        VisionTransformer(arch="huge")
    with pytest.raises(ConfigError, match=r"out_indices \[2\] must name blocks in -2..1"):
        tiny_vit(out_indices=[2])


def test_output_cls_token_false_gives_the_patch_tokens_only():
    out = tiny_vit(output_cls_token=False)(torch.randn(2, 3, 32, 32))
    assert len(out) == 1 and out[0].shape == (2, 32, 8, 8)


def test_frozen_stages_freeze_the_embeddings_and_the_first_blocks_and_keep_them_in_eval_mode():
    vit = tiny_vit(frozen_stages=1, drop_path_rate=0.1).train()
    frozen = {n for n, p in vit.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, _ in vit.named_parameters() if n.startswith(("cls_token", "pos_embed", "patch_embed.",
                                                                             "blocks.0."))}
    assert not vit.blocks[0].training and vit.blocks[1].training
    whole = tiny_vit(frozen_stages=2)
    assert not any(p.requires_grad for p in whole.parameters())


def test_stop_grad_conv1_freezes_only_the_patch_projection():
    vit = tiny_vit(stop_grad_conv1=True)
    frozen = {n for n, p in vit.named_parameters() if not p.requires_grad}
    assert frozen == {"patch_embed.proj.weight", "patch_embed.proj.bias"}
    bound = math.sqrt(6.0 / (3 * 4 * 4 + 32))  # MoCo v3's uniform init of the projection
    assert vit.patch_embed.proj.weight.abs().max() <= bound and vit.patch_embed.proj.bias.abs().max() == 0


def test_sincos_position_embedding_is_fixed_and_encodes_row_then_column():
    vit = tiny_vit(sincos_pos_embed=True)
    assert not vit.pos_embed.requires_grad
    pe = sincos_pos_embed_2d((8, 8), 32)
    torch.testing.assert_close(vit.pos_embed.data, pe)
    assert pe.shape == (1, 65, 32) and pe[0, 0].abs().max() == 0
    omega = 1.0 / 10000 ** (torch.arange(8) / 8)
    r, c = 2, 5  # token 1 + r * 8 + c: sin(r w), cos(r w), sin(c w), cos(c w)
    torch.testing.assert_close(pe[0, 1 + r * 8 + c], torch.cat([(r * omega).sin(), (r * omega).cos(),
                                                               (c * omega).sin(), (c * omega).cos()]))


def test_random_masking_removes_exactly_the_ratio_per_image_and_ids_restore_undoes_the_shuffle():
    torch.manual_seed(0)
    x = torch.arange(4 * 64, dtype=torch.float32).view(4, 64, 1).expand(-1, -1, 3).contiguous()
    kept, mask, ids_restore = random_masking(x, 0.75)
    assert kept.shape == (4, 16, 3) and mask.shape == (4, 64)
    assert mask.sum(1).tolist() == [48.0] * 4 and len({tuple(m.tolist()) for m in mask}) == 4
    for i in range(4):  # the kept tokens are exactly those the mask leaves
        assert sorted(kept[i, :, 0].tolist()) == x[i, mask[i] == 0, 0].tolist()
    full = torch.cat([kept, torch.full((4, 48, 3), -1.0)], dim=1)
    restored = torch.gather(full, 1, ids_restore[..., None].expand(-1, -1, 3))
    torch.testing.assert_close(restored[mask == 0], x[mask == 0])
    assert (restored[mask == 1] == -1).all()


def test_forward_masked_encodes_the_cls_token_and_the_visible_patches_only():
    vit = tiny_vit()
    tokens, mask, ids_restore = vit.forward_masked(torch.randn(3, 3, 32, 32), 0.75)
    assert tokens.shape == (3, 1 + 16, 32) and mask.sum(1).tolist() == [48.0] * 3 and ids_restore.shape == (3, 64)


class _Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = tiny_vit()
        self.head = nn.Linear(32, 10)


def test_layer_decay_scales_each_layers_lr_and_drops_weight_decay_on_norms_biases_and_tokens():
    model = _Classifier()
    opt = build_optimizer(dict(type="AdamW", lr=1.0, weight_decay=0.05, constructor="TransformerFinetuneConstructor",
                               model_type="vit", layer_decay=0.5), model)
    got = {g["name"]: (g["lr"], g["weight_decay"]) for g in opt.param_groups}
    assert set(got) == {n for n, _ in model.named_parameters()}
    for name, p in model.named_parameters():
        if name.startswith(("backbone.cls_token", "backbone.pos_embed", "backbone.patch_embed.")):
            lr = 0.5 ** 3  # layer 0 of 2 blocks: decay ** (2 + 1 - 0)
        elif name.startswith("backbone.blocks."):
            lr = 0.5 ** (2 - int(name.split(".")[2]))  # blocks.i is layer i + 1
        else:
            lr = 1.0  # final norm and head: layer 3
        wd = 0.0 if p.ndim == 1 or name.endswith(("pos_embed", "cls_token")) else 0.05
        assert got[name] == (pytest.approx(lr), wd), name
    assert got["backbone.blocks.0.attn.qkv.weight"] == (0.25, 0.05) and got["backbone.norm.weight"] == (1.0, 0.0)
    assert got["backbone.patch_embed.proj.weight"] == (0.125, 0.05) and got["backbone.cls_token"] == (0.125, 0.0)


def test_layer_decay_needs_its_constructor_and_a_vit():
    with pytest.raises(ConfigError, match=r"constructor='TransformerFinetuneConstructor' and layer_decay go together"):
        build_optimizer(dict(type="AdamW", lr=1.0, layer_decay=0.5), _Classifier())
    with pytest.raises(ConfigError, match=r"no trainable 'blocks.<i>.' parameters"):
        build_optimizer(dict(type="AdamW", lr=1.0, constructor="TransformerFinetuneConstructor", layer_decay=0.5),
                        nn.Linear(2, 2))
    with pytest.raises(ConfigError, match=r"optimizer.constructor 'Foo' is not one of"):
        build_optimizer(dict(type="AdamW", lr=1.0, constructor="Foo"), nn.Linear(2, 2))
