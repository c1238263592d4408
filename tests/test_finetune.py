"""The fine-tuning protocol (MAE / SimMIM / CAE's): Mixup / CutMix and label smoothing against hand
computations, layer-wise lr decay on the fine-tuning model (ViT and Swin layer ids), the stage end to
end on a tiny ViT with its random-init baseline, and bad input."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ssl_lib.benchmarks import finetune as ft
from ssl_lib.config import load_config
from ssl_lib.engine.optimizer import build_optimizer, swin_layer_id
from ssl_lib.errors import ConfigError
from ssl_lib.models import build_algorithm

TINY_MAE = str(Path(__file__).parent / "configs" / "mae_vit-d32-l2-p4_1xb16-coslr-2e_fmnist.py")


def test_label_smoothing_and_soft_cross_entropy_match_the_formulas():
    target = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.25, 0.75, 0.0, 0.0]])
    smooth = ft.smooth_labels(target, 0.1)
    assert torch.allclose(smooth, torch.tensor([[0.925, 0.025, 0.025, 0.025], [0.25, 0.7, 0.025, 0.025]]))
    logits = torch.tensor([[math.log(3.0), 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    # row 1: softmax = (1/2, 1/6, 1/6, 1/6); row 2: uniform 1/4
    want = (-(0.925 * math.log(0.5) + 0.075 * math.log(1 / 6)) + math.log(4)) / 2
    assert ft.soft_cross_entropy(logits, smooth).item() == pytest.approx(want, rel=1e-6)


def test_mixup_mixes_images_and_targets_in_the_same_proportion():
    # image i is the constant i and has label i: each target row names its partner and lam
    img = torch.arange(4, dtype=torch.float32)[:, None, None, None].expand(4, 3, 4, 4).contiguous()
    label = torch.arange(4)
    aug = ft.BatchAugments([dict(type="BatchMixup", alpha=0.8, num_classes=4, prob=1.0)], num_classes=4)
    lams = set()
    for seed in range(5):
        out, target, kind = aug(img, label, torch.Generator().manual_seed(seed))
        assert kind == "BatchMixup" and torch.allclose(target.sum(1), torch.ones(4))
        lam = float(target[torch.arange(4), label].min())
        for i in range(4):
            others = target[i].clone()
            others[i] = -1
            partner = int(others.argmax()) if target[i, i] < 1 else i
            want = target[i, i] * i + (1 - target[i, i]) * partner
            assert torch.allclose(out[i], torch.full_like(out[i], float(want)), atol=1e-5)
            assert target[i, i].item() in (pytest.approx(lam), 1.0)
        lams.add(round(lam, 6))
    assert len(lams) == 5 and all(0 < x < 1 for x in lams)  # a new lam per batch


def test_cutmix_pastes_one_box_and_weights_the_targets_by_its_area():
    img = torch.zeros(2, 1, 10, 10)
    img[1] = 1.0
    label = torch.tensor([0, 1])
    aug = ft.BatchAugments([dict(type="BatchCutMix", alpha=1.0, prob=1.0)], num_classes=2)
    for seed in range(20):
        out, target, kind = aug(img, label, torch.Generator().manual_seed(seed))
        assert kind == "BatchCutMix"
        changed = (out != img).any(1)                                  # (2, 10, 10): the pasted pixels
        share = changed.float().mean((1, 2))
        if share.sum() == 0:                                           # the permutation kept each image: no change
            assert torch.allclose(target, torch.nn.functional.one_hot(label, 2).float()) or \
                torch.allclose(target.sum(1), torch.ones(2))
            continue
        ys, xs = torch.nonzero(changed[0], as_tuple=True)
        box = changed[0, ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        assert bool(box.all())                                         # one rectangle
        assert target[0, 1].item() == pytest.approx(share[0].item())   # the partner's label weighs its area
        assert target[0, 0].item() == pytest.approx(1 - share[0].item())


def test_augments_with_no_probability_left_pass_the_batch_through_and_bad_settings_fail():
    img, label = torch.randn(3, 1, 4, 4), torch.tensor([0, 1, 2])
    out, target, kind = ft.BatchAugments([], 3)(img, label, torch.Generator())
    assert kind == "none" and torch.equal(out, img) and torch.equal(target, torch.eye(3))
    with pytest.raises(ConfigError, match=r"augments\[0\].type = 'Mixup'"):
        ft.BatchAugments([dict(type="Mixup", alpha=1.0)], 3)
    with pytest.raises(ConfigError, match="add up to more than 1"):
        ft.BatchAugments([dict(type="BatchMixup", alpha=1.0, prob=0.7), dict(type="BatchCutMix", alpha=1.0, prob=0.7)], 3)


def test_swin_layer_ids_follow_simmims_numbering():
    depths = [2, 2, 6, 2]
    assert swin_layer_id("backbone.patch_embed.proj.weight", depths) == 0
    assert swin_layer_id("backbone.mask_token", depths) == 0
    assert swin_layer_id("backbone.layers.0.blocks.1.attn.qkv.weight", depths) == 2
    assert swin_layer_id("backbone.layers.1.downsample.reduction.weight", depths) == 2  # the last block before it
    assert swin_layer_id("backbone.layers.2.blocks.0.mlp.fc1.weight", depths) == 5
    assert swin_layer_id("backbone.layers.3.blocks.1.norm1.weight", depths) == 12
    assert swin_layer_id("backbone.norm.weight", depths) == 13 and swin_layer_id("head.weight", depths) == 13


def _tiny_vit():
    torch.manual_seed(0)
    return build_algorithm(load_config(TINY_MAE).model)


def test_layer_decay_on_the_fine_tuning_model_gives_the_head_the_full_lr():
    vit = _tiny_vit().backbone
    model = ft.FineTuneModel(vit, 32, 10)
    assert isinstance(vit.norm, torch.nn.Identity)  # MAE's fine-tuning drops the final norm for fc_norm
    opt = build_optimizer(dict(type="AdamW", lr=1.0, weight_decay=0.05, constructor="TransformerFinetuneConstructor",
                               model_type="vit", layer_decay=0.5), model)
    lr = {g["name"]: (g["lr"], g["weight_decay"]) for g in opt.param_groups}
    assert lr["head.weight"] == (1.0, 0.05) and lr["fc_norm.weight"] == (1.0, 0.0)
    assert lr["backbone.blocks.1.mlp.fc1.weight"] == (0.5, 0.05)            # 2 blocks: layer 2 of 3
    assert lr["backbone.blocks.0.attn.qkv.weight"] == (0.25, 0.05)
    assert lr["backbone.patch_embed.proj.weight"] == (0.125, 0.05) and lr["backbone.cls_token"] == (0.125, 0.0)


@pytest.fixture(scope="module")
def mae_backbone(tmp_path_factory):
    from ssl_lib.stages.extract import extract

    root = tmp_path_factory.mktemp("ft")
    model = _tiny_vit()
    with torch.no_grad():  # "pretrained": away from the seeded init that the baseline starts from
        for param in model.parameters():
            param.add_(0.01 * torch.randn_like(param))
    torch.save({"state_dict": model.state_dict()}, root / "model.pth")
    extract(str(root / "model.pth"), str(root / "backbone"), config=TINY_MAE)
    return str(root / "backbone"), model


def test_the_stage_fine_tunes_the_extracted_weights_with_the_recipes_drop_path_and_reports_a_baseline(
        fmnist_tiny, mae_backbone, tmp_path, monkeypatch):
    from ssl_lib.stages.finetune import finetune

    backbone, model = mae_backbone
    seen = []
    real_run = ft.run

    def spy(bb, *args, **kwargs):
        seen.append({k: v.clone() for k, v in bb.state_dict().items()})
        seen.append([m.drop_prob for m in bb.modules() if type(m).__name__ == "DropPath"])
        return real_run(bb, *args, **kwargs)

    monkeypatch.setattr(ft, "run", spy)
    out = finetune(fmnist_tiny, backbone, str(tmp_path / "ft"), epochs=1, train_limit=30, baseline=True,
                   cfg_options=["data.samples_per_gpu=8"])
    pretrained, drop, random_init, _ = seen
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(pretrained[key], value), key                # the extracted weights, not a fresh init
    assert any(not torch.equal(random_init[k], v) for k, v in pretrained.items())
    assert drop and max(drop) == pytest.approx(0.1)                    # the recipe's drop_path_rate
    written = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert written["protocol"] == "finetune" and written["num_train"] == 30 and written["train_subset"] == "balanced"
    assert 0 <= written["top1"] <= written["top5"] <= 1 and written["baseline"]["epochs_run"] == 1
    assert written["config"].endswith("vit_ft-1xb64-coslr-10e_fmnist.py") and out["top1"] == written["top1"]
    from ssl_lib.stages.report import report

    report(output=str(tmp_path / "r"), finetune=str(tmp_path / "ft"))
    md = (tmp_path / "r" / "report.md").read_text()
    assert f"| {written['algorithm']} | vit_ft-1xb64-coslr-10e_fmnist | 1 |" in md
    assert "| same backbone, random init | vit_ft-1xb64-coslr-10e_fmnist | 1 |" in md
    assert (tmp_path / "r" / "finetune.png").stat().st_size > 0


def test_bad_input_fails_before_training(fmnist_tiny, mae_backbone, tmp_path):
    from ssl_lib.stages.finetune import finetune

    backbone, _ = mae_backbone
    with pytest.raises(ConfigError, match=r"model.head: unknown key\(s\) \['pol'\]"):
        finetune(fmnist_tiny, backbone, str(tmp_path / "a"), epochs=1, cfg_options=["model.head.pol=mean"])
    with pytest.raises(ConfigError, match=r"runner.max_epochs \(0\) and data.samples_per_gpu \(8\) must be at least 1"):
        finetune(fmnist_tiny, backbone, str(tmp_path / "b"), cfg_options=["runner.max_epochs=0", "data.samples_per_gpu=8"])
    with pytest.raises(ConfigError, match="model.backbone overrides"):
        finetune(fmnist_tiny, backbone, str(tmp_path / "c"), epochs=1, cfg_options=["model.backbone.depth=3"])
    assert not any((tmp_path / d).exists() for d in "abc")


def test_caes_relative_position_bias_recipe_fine_tunes_the_extracted_weights_with_fresh_bias_tables(
        fmnist_tiny, mae_backbone, tmp_path, monkeypatch):
    from ssl_lib.stages.finetune import finetune

    backbone, model = mae_backbone
    seen = []
    real_run = ft.run
    monkeypatch.setattr(ft, "run", lambda bb, *a, **kw: (seen.append(copy.deepcopy(bb)), real_run(bb, *a, **kw))[1])
    out = finetune(fmnist_tiny, backbone, str(tmp_path / "ft"), epochs=1, train_limit=20,
                   cfg_options=["data.samples_per_gpu=10", "model.backbone.use_rel_pos_bias=True"])
    (rpe,) = seen
    pretrained = model.backbone.state_dict()
    c = pretrained["blocks.0.attn.qkv.bias"].numel() // 3
    attn = rpe.blocks[1].attn
    assert torch.equal(attn.qkv.weight, pretrained["blocks.1.attn.qkv.weight"])
    assert torch.equal(attn.q_bias, pretrained["blocks.1.attn.qkv.bias"][:c])
    assert torch.equal(attn.v_bias, pretrained["blocks.1.attn.qkv.bias"][2 * c:])
    assert not attn.relative_position_bias_table.abs().any()
    assert out["backbone_overrides"]["use_rel_pos_bias"] is True and 0 <= out["top1"] <= 1


@pytest.mark.parametrize("name", sorted(p.name for p in (Path(__file__).parents[1] / "ssl_lib" / "configs" / "benchmarks"
                                                          / "classification").glob("*/*_ft-*.py")))
def test_every_fine_tuning_recipe_loads_and_builds_its_optimizer(name):
    from ssl_lib.stages.finetune import _recipe

    folder = "imagenet" if "in1k" in name else "fmnist"
    cfg = load_config(f"benchmarks/classification/{folder}/{name}")
    recipe = _recipe(cfg, None)
    assert recipe["epochs"] >= 1 and recipe["batch_size"] >= 1
    ft.BatchAugments(recipe["augments"], 10)
    if recipe["optimizer_cfg"].get("model_type") == "vit":  # layer decay: a group per parameter
        model = ft.FineTuneModel(_tiny_vit().backbone, 32, 10, **{k: v for k, v in cfg.model.head.items()
                                                                    if k in ("pool", "fc_norm", "init_std")})
        assert len(build_optimizer(recipe["optimizer_cfg"], model).param_groups) > 1


def test_a_swin_backbone_fine_tunes_with_simmims_layer_decay(fmnist_tiny, tmp_path, monkeypatch):
    from ssl_lib.stages.extract import extract
    from ssl_lib.stages.finetune import finetune

    tiny_simmim = str(Path(__file__).parent / "configs" / "simmim_swin-d16-w4-p4_1xb16-coslr-2e_fmnist.py")
    torch.manual_seed(0)
    torch.save({"state_dict": build_algorithm(load_config(tiny_simmim).model).state_dict()}, tmp_path / "m.pth")
    extract(str(tmp_path / "m.pth"), str(tmp_path / "backbone"), config=tiny_simmim)
    groups = []
    real = ft.build_optimizer

    def spy(cfg, model):
        opt = real(cfg, model)
        groups.extend(opt.param_groups)
        return opt

    monkeypatch.setattr(ft, "build_optimizer", spy)
    out = finetune(fmnist_tiny, str(tmp_path / "backbone"), str(tmp_path / "ft"), epochs=1, train_limit=20,
                   cfg_options=["data.samples_per_gpu=10"])
    assert out["config"].endswith("swin_ft-1xb64-coslr-10e_fmnist.py") and 0 <= out["top1"] <= 1
    scale = {g["name"]: g["lr_scale"] for g in groups}
    top = max(g["layer_id"] for g in groups)
    assert scale["head.weight"] == 1.0 and {g["layer_id"] for g in groups} == set(range(top + 1))
    assert scale["backbone.patch_embed.proj.weight"] == pytest.approx(0.9 ** top)
