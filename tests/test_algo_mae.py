"""MAE: the reconstruction loss, patch order, the decoder's unshuffle, training, resume and extract, the
seed's recipe."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from ssl_lib.config import load_config
from ssl_lib.engine.checkpoint import load as load_checkpoint
from ssl_lib.engine.optimizer import build_optimizer
from ssl_lib.engine.runner import EpochRunner
from ssl_lib.engine.train import train
from ssl_lib.errors import ConfigError
from ssl_lib.models import MAEPretrainDecoder, MAEPretrainHead, VisionTransformer, build_algorithm
from ssl_lib.models.heads.mae_head import patchify
from ssl_lib.models.losses import mae_reconstruction
from ssl_lib.models.vit import random_masking
from ssl_lib.stages.extract import extract

TINY = str(Path(__file__).parent / "configs" / "mae_vit-d32-l2-p4_1xb16-coslr-2e_fmnist.py")
IN1K = "selfsup/mae/mae_vit-base-p16_8xb512-coslr-400e_in1k.py"


def test_mae_loss_is_the_mean_squared_error_over_removed_patches_only():
    pred = torch.zeros(1, 2, 2)
    target = torch.tensor([[[1.0, 3.0], [10.0, 20.0]]])
    mask = torch.tensor([[1.0, 0.0]])  # the second patch is visible: it does not count
    assert mae_reconstruction(pred, target, mask, norm_pix=False).item() == pytest.approx((1 + 9) / 2)
    # norm_pix: [1, 3] has mean 2 and unbiased variance 2 -> [-1, 1] / sqrt(2 + eps); mse = 1 / (2 + eps)
    assert mae_reconstruction(pred, target, mask, norm_pix=True, eps=1e-6).item() == pytest.approx(1 / (2 + 1e-6))
    two = torch.tensor([[1.0, 1.0]])
    assert mae_reconstruction(pred, target, two, norm_pix=False).item() == pytest.approx((5 + 250) / 2)


def test_patchify_cuts_rows_of_patches_each_flattened_row_column_channel():
    img = torch.arange(2 * 4 * 4, dtype=torch.float32).view(1, 2, 4, 4)
    patches = patchify(img, 2)
    assert patches.shape == (1, 4, 8)
    # patch 1 = rows 0-1, columns 2-3; pixel (0, 2) channel 0 then channel 1, then (0, 3), ...
    assert patches[0, 1].tolist() == [2.0, 18.0, 3.0, 19.0, 6.0, 22.0, 7.0, 23.0]


def test_the_head_ignores_predictions_of_visible_patches():
    head = MAEPretrainHead(norm_pix=True, patch_size=4)
    img, pred = torch.randn(2, 3, 8, 8), torch.randn(2, 4, 48)
    mask = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    other = pred.clone()
    other[mask == 0] = 100.0
    torch.testing.assert_close(head(img, pred, mask)["loss"], head(img, other, mask)["loss"])
    assert head(img, pred, mask)["loss"] != head(img, pred, torch.ones(2, 4))["loss"]


def test_the_decoder_puts_visible_tokens_back_in_place_and_mask_tokens_elsewhere():
    torch.manual_seed(0)
    dec = MAEPretrainDecoder(num_patches=16, patch_size=2, in_chans=3, embed_dim=12, decoder_embed_dim=12,
                             decoder_depth=0, decoder_num_heads=2)
    with torch.no_grad():  # make every layer but the unshuffle the identity
        for lin in (dec.decoder_embed, dec.decoder_pred):
            lin.weight.copy_(torch.eye(12))
            lin.bias.zero_()
        dec.decoder_pos_embed.zero_()
    dec.decoder_norm = nn.Identity()
    tokens = torch.randn(2, 16, 12)
    kept, mask, ids_restore = random_masking(tokens, 0.75)
    out = dec(torch.cat([torch.randn(2, 1, 12), kept], dim=1), ids_restore)
    assert out.shape == (2, 16, 12)
    torch.testing.assert_close(out[mask == 0], tokens[mask == 0])
    torch.testing.assert_close(out[mask == 1], dec.mask_token[0].expand(int(mask.sum()), -1))


def test_two_steps_remove_exactly_three_quarters_and_every_trainable_parameter_gets_a_gradient():
    torch.manual_seed(0)
    cfg = load_config(TINY)
    model = build_algorithm(cfg.model).train()
    optimizer = build_optimizer(cfg.optimizer, model)
    seen = []
    forward_masked = model.backbone.forward_masked
    model.backbone.forward_masked = lambda x, r: seen.append(forward_masked(x, r)) or seen[-1]
    for _ in range(2):
        loss = model([torch.randn(8, 3, 32, 32)])["loss"]
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        trainable = [n for n, p in model.named_parameters() if p.requires_grad]
        assert trainable and [n for n in trainable if model.get_parameter(n).grad is None] == []
        optimizer.step()
    for tokens, mask, _ in seen:
        assert mask.shape == (8, 64) and mask.sum(1).tolist() == [48.0] * 8 and tokens.shape == (8, 17, 32)
    assert not model.backbone.pos_embed.requires_grad  # fixed sin-cos


def test_the_recipes_adamw_has_no_weight_decay_on_norms_biases_position_embeddings_and_tokens():
    cfg = load_config(TINY)
    model = build_algorithm(cfg.model)
    opt = build_optimizer(cfg.optimizer, model)
    names = {id(p): n for n, p in model.named_parameters()}
    wd = {names[id(g["params"][0])]: g["weight_decay"] for g in opt.param_groups}
    assert wd["neck.mask_token"] == wd["backbone.cls_token"] == wd["backbone.norm.weight"] == 0.0
    assert wd["backbone.blocks.0.attn.qkv.bias"] == wd["neck.decoder_norm.bias"] == 0.0
    assert wd["backbone.blocks.0.attn.qkv.weight"] == wd["neck.decoder_pred.weight"] == 0.05
    no_decay = ("norm", "bias", "pos_embed", "mask_token", "cls_token")
    assert all((v == 0.0) == any(k in n for k in no_decay) for n, v in wd.items())
    assert all(g["lr"] == pytest.approx(1.5e-4 * 64 / 256) and g["betas"] == (0.9, 0.95) for g in opt.param_groups)


def test_patch_sizes_and_patch_counts_that_disagree_are_named_at_build_time():
    cfg = load_config(TINY)
    cfg.model.neck.num_patches = 49
    with pytest.raises(ConfigError, match=r"model.neck.num_patches=49 but the backbone cuts 64 patches"):
        build_algorithm(cfg.model)
    cfg = load_config(TINY)
    cfg.model.head.patch_size = 8
    with pytest.raises(ConfigError, match=r"model.head.patch_size=8 but the backbone's is 4"):
        build_algorithm(cfg.model)


def test_training_resumes_from_a_checkpoint_and_extract_gives_a_vit_that_loads_its_weights(fmnist_tiny, tmp_path):
    whole = tmp_path / "whole"
    EpochRunner(load_config(TINY), fmnist_tiny, str(whole)).run()
    (tmp_path / "resumed").mkdir()
    shutil.copy(whole / "epoch_1.pth", tmp_path / "resumed" / "epoch_1.pth")
    torch.manual_seed(123)  # the resumed run must take its random state (masks) from the checkpoint
    train(TINY, fmnist_tiny, str(tmp_path / "resumed"))
    a, b = load_checkpoint(str(whole / "epoch_2.pth")), load_checkpoint(str(tmp_path / "resumed" / "epoch_2.pth"))
    assert a["meta"]["iter"] == b["meta"]["iter"] == 8
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, msg=key)
    extract(str(tmp_path / "resumed"), str(tmp_path / "backbone"))
    cfg = load_config(TINY).model.backbone.to_dict()
    cfg.pop("type")
    vit = VisionTransformer(**cfg, init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "backbone" /
                                                                                  "backbone.pth")))
    for key, value in vit.state_dict().items():
        torch.testing.assert_close(value, b["state_dict"][f"backbone.{key}"])


def test_the_seeds_imagenet_recipe_loads_and_builds_a_vit_base_with_maes_decoder():
    cfg = load_config(IN1K)
    with torch.device("meta"):
        model = build_algorithm(cfg.model)
    assert type(model).__name__ == "MAE" and model.mask_ratio == 0.75
    encoder = sum(p.numel() for p in model.backbone.parameters())
    assert encoder == 86_567_656 - 769_000  # timm's ViT-B/16 (86.6M) less its 1000-class classifier
    assert (len(model.neck.decoder_blocks), model.neck.decoder_embed.out_features,
            model.neck.decoder_blocks[0].attn.num_heads, model.neck.decoder_pred.out_features) == (8, 512, 16, 768)
    assert model.head.norm_pix and cfg.data.samples_per_gpu == 512
    assert cfg.optimizer.type == "AdamW" and cfg.optimizer.lr == pytest.approx(1.5e-4 * 4096 / 256)
    assert cfg.optimizer.betas == (0.9, 0.95) and cfg.optimizer.weight_decay == 0.05
    assert (cfg.lr_config.policy, cfg.lr_config.warmup_iters, cfg.lr_config.warmup_by_epoch,
            cfg.lr_config.by_epoch, cfg.runner.max_epochs) == ("CosineAnnealing", 40, True, False, 400)
