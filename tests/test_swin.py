"""The Swin backbone: timm's weights and features, the seed's options, SimMIM's masked forward."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from timm.models.swin_transformer import SwinTransformer as TimmSwin

from ssl_lib.errors import ConfigError, DataError
from ssl_lib.models import SwinTransformer
from ssl_lib.models.swin import ARCHS

TINY = dict(embed_dims=16, depths=(1, 2), num_heads=(1, 2))


def tiny_swin(**kw) -> SwinTransformer:
    return SwinTransformer(**{"arch": TINY, "img_size": 32, "patch_size": 4, "window_size": 4, "out_indices": (-1,),
                              "drop_path_rate": 0.0, **kw})


def test_a_state_dict_written_by_timm_loads_strictly_and_gives_timms_features(tmp_path):
    torch.manual_seed(0)
    timm_swin = TimmSwin(img_size=32, patch_size=4, embed_dim=16, depths=(1, 2), num_heads=(1, 2), window_size=4,
                         num_classes=10).eval()
    torch.save(timm_swin.state_dict(), tmp_path / "timm.pth")  # with its classifier head.fc.*, dropped on load
    ours = tiny_swin(out_indices=(0, 1), init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "timm.pth")))
    ours.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        stage0, last = ours(x)
        expected = timm_swin.forward_features(x)  # (B, H, W, C) after the final norm
        after_stage0 = timm_swin.layers[0](timm_swin.patch_embed(x))
    assert stage0.shape == (2, 16, 8, 8) and last.shape == (2, 32, 4, 4) and ours.out_channels == (16, 32)
    torch.testing.assert_close(last, expected.permute(0, 3, 1, 2))
    torch.testing.assert_close(stage0, after_stage0.permute(0, 3, 1, 2))  # an inner stage: no final norm
    assert set(ours.state_dict()) == {k for k in timm_swin.state_dict() if not k.startswith("head.")}


def test_a_missing_or_mismatching_pretrained_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"pretrained checkpoint not found: .*nope\.pth"):
        tiny_swin(init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "nope.pth")))
    torch.save(tiny_swin(arch=dict(TINY, embed_dims=32)).state_dict(), tmp_path / "w32.pth")
    with pytest.raises(DataError, match=r"w32\.pth does not fit SwinTransformer\(embed_dims=16"):
        tiny_swin(init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "w32.pth")))
    with pytest.raises(ConfigError, match=r"only dict\(type='Pretrained'"):
        tiny_swin(init_cfg=dict(type="Kaiming"))


def test_a_simmim_checkpoints_mask_token_is_dropped_for_a_backbone_without_one(tmp_path):
    torch.manual_seed(0)
    pretrained = tiny_swin(use_mask_token=True)
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in pretrained.state_dict().items()}}, tmp_path / "m.pth")
    plain = tiny_swin(init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "m.pth")))
    assert plain.mask_token is None
    qkv = "layers.1.blocks.1.attn.qkv.weight"
    torch.testing.assert_close(plain.get_parameter(qkv), pretrained.get_parameter(qkv))
    masked = tiny_swin(use_mask_token=True, init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "m.pth")))
    torch.testing.assert_close(masked.mask_token, pretrained.mask_token)


def test_arch_presets_are_swin_tiny_small_and_base():
    assert {k: (v["embed_dims"], v["depths"], v["num_heads"]) for k, v in ARCHS.items()} == {
        "tiny": (96, (2, 2, 6, 2), (3, 6, 12, 24)), "small": (96, (2, 2, 18, 2), (3, 6, 12, 24)),
        "base": (128, (2, 2, 18, 2), (4, 8, 16, 32))}
    with torch.device("meta"):
        swin = SwinTransformer(arch="B", img_size=192, window_size=6)  # the seed's spelling
    assert [len(s.blocks) for s in swin.layers] == [2, 2, 18, 2] and swin.layers[3].blocks[0].attn.num_heads == 32
    assert swin.out_channels == (1024,) and swin.out_indices == (3,) and swin.layers[0].blocks[0].window_size == (6, 6)
    with pytest.raises(ConfigError, match=r"arch 'huge' is not one of"):
        SwinTransformer(arch="huge")
    with pytest.raises(ConfigError, match=r"out_indices \[2\] must name stages in -2..1"):
        tiny_swin(out_indices=[2])
    with pytest.raises(ConfigError, match=r"img_size 36 is not a multiple of patch_size 4 x 2\^1"):
        tiny_swin(img_size=36)


def test_masked_forward_replaces_exactly_the_masked_patch_embeddings_by_the_mask_token():
    torch.manual_seed(0)
    swin = tiny_swin(use_mask_token=True).eval()
    seen = []
    swin.layers[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    x = torch.randn(2, 3, 32, 32)
    mask = torch.zeros(2, 8, 8, dtype=torch.bool)
    mask[0, :3, 2:5] = True
    mask[1, 7, 7] = True
    with torch.no_grad():
        swin(x, mask)
        swin(x)
        embedded = swin.patch_embed(x)
    masked, plain = seen
    torch.testing.assert_close(plain, embedded)
    torch.testing.assert_close(masked[~mask], embedded[~mask])
    torch.testing.assert_close(masked[mask], swin.mask_token[0].expand(int(mask.sum()), -1))
    assert not torch.allclose(masked[mask], embedded[mask])


def test_a_mask_that_does_not_fit_the_patch_grid_or_a_backbone_without_mask_token_is_refused():
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ConfigError, match=r"a mask of shape \(1, 16, 16\) for a patch grid of \(8, 8\)"):
        tiny_swin(use_mask_token=True)(x, torch.zeros(1, 16, 16))
    with pytest.raises(ConfigError, match=r"no mask token; set use_mask_token=True"):
        tiny_swin()(x, torch.zeros(1, 8, 8))


def test_frozen_stages_freeze_the_patch_embedding_and_the_first_stages_and_keep_them_in_eval_mode():
    swin = tiny_swin(frozen_stages=1, use_mask_token=True, drop_path_rate=0.1).train()
    frozen = {n for n, p in swin.named_parameters() if not p.requires_grad}
    first = ("mask_token", "patch_embed.", "layers.0.")
    assert frozen == {n for n, _ in swin.named_parameters() if n.startswith(first)}
    assert not swin.patch_embed.training and not swin.layers[0].training and swin.layers[1].training
    assert swin.norm.weight.requires_grad
    whole = tiny_swin(frozen_stages=2)
    assert not any(p.requires_grad for p in whole.parameters())
    with pytest.raises(ConfigError, match=r"frozen_stages 3 must be in -1..2"):
        tiny_swin(frozen_stages=3)


def test_bias_tables_of_another_window_size_are_resampled_on_loading():
    torch.manual_seed(0)
    small = tiny_swin(window_size=2)  # tables of 3 x 3 offsets; the seed goes from windows of 6 to 7
    large = tiny_swin(window_size=4)
    large.load_state_dict(small.state_dict())
    table = small.layers[1].blocks[0].attn.relative_position_bias_table  # (9, 2 heads)
    expected = torch.nn.functional.interpolate(table.T.reshape(1, 2, 3, 3), size=(7, 7), mode="bicubic")
    torch.testing.assert_close(large.layers[1].blocks[0].attn.relative_position_bias_table,
                               expected.reshape(2, 49).T)
    torch.testing.assert_close(large.layers[0].blocks[0].attn.qkv.weight, small.layers[0].blocks[0].attn.qkv.weight)
    x = torch.randn(1, 3, 32, 32)
    assert large.eval()(x)[0].shape == (1, 32, 4, 4)


def test_a_seed_swin_checkpoint_in_mmcls_names_loads_with_its_patch_merging_reordered(tmp_path):
    torch.manual_seed(0)
    source = tiny_swin()
    seed_state = {}  # the seed's (mmcls / mmpretrain) names, written out by hand
    for key, value in source.state_dict().items():
        key = (key.replace("patch_embed.proj.", "patch_embed.projection.").replace("layers.", "stages.")
               .replace(".attn.", ".attn.w_msa.").replace("mlp.fc1.", "ffn.layers.0.0.")
               .replace("mlp.fc2.", "ffn.layers.1."))
        key = "norm1." + key[len("norm."):] if key.startswith("norm.") else key
        if ".downsample." not in key and not key.endswith("relative_position_index"):
            seed_state[key] = torch.randn_like(value) if value.is_floating_point() else value
    # mmcls merges at the end of stage 0 with nn.Unfold's channel order, and keeps a norm per output stage
    merge_norm_w, merge_norm_b, reduction = torch.randn(64), torch.randn(64), torch.randn(32, 64)
    seed_state.update({"stages.0.downsample.norm.weight": merge_norm_w, "stages.0.downsample.norm.bias": merge_norm_b,
                       "stages.0.downsample.reduction.weight": reduction, "norm0.weight": torch.randn(16),
                       "norm0.bias": torch.randn(16)})
    torch.save(seed_state, tmp_path / "simmim_seed.pth")
    loaded = tiny_swin(init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "simmim_seed.pth"))).eval()
    torch.testing.assert_close(loaded.layers[1].blocks[1].attn.relative_position_bias_table,
                               seed_state["stages.1.blocks.1.attn.w_msa.relative_position_bias_table"])
    torch.testing.assert_close(loaded.layers[0].blocks[0].mlp.fc2.weight, seed_state["stages.0.blocks.0.ffn.layers.1.weight"])
    torch.testing.assert_close(loaded.norm.bias, seed_state["norm1.bias"])  # the last stage's norm
    x = torch.randn(2, 8, 8, 16)  # (B, H, W, C) as between timm's stages
    unfolded = F.unfold(x.permute(0, 3, 1, 2), kernel_size=2, stride=2).transpose(1, 2)  # mmcls's PatchMerging
    expected = F.layer_norm(unfolded, (64,), merge_norm_w, merge_norm_b) @ reduction.T
    with torch.no_grad():
        merged = loaded.layers[1].downsample(x)
    torch.testing.assert_close(merged, expected.reshape(2, 4, 4, 32))
