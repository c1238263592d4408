"""SimMIM: the block mask, the L1 loss on masked pixels, the linear decoder, training, resume, extract and
features, the seed's recipe."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ssl_lib.config import load_config
from ssl_lib.data.datasets.masked import MaskedImageDataset, SimMIMMaskGenerator
from ssl_lib.benchmarks.features import eval_dataset, load_backbone_meta
from ssl_lib.engine.checkpoint import load as load_checkpoint
from ssl_lib.engine.optimizer import build_optimizer
from ssl_lib.engine.runner import EpochRunner
from ssl_lib.engine.train import train
from ssl_lib.errors import ConfigError
from ssl_lib.models import build_algorithm
from ssl_lib.models.heads.simmim_head import SimMIMHead
from ssl_lib.models.losses import simmim_reconstruction
from ssl_lib.models.necks.simmim_neck import SimMIMNeck
from ssl_lib.stages.extract import extract
from ssl_lib.stages.features import features

TINY = str(Path(__file__).parent / "configs" / "simmim_swin-d16-w4-p4_1xb16-coslr-2e_fmnist.py")
IN1K = "selfsup/simmim/simmim_swin-base_16xb128-coslr-100e_in1k-192.py"


def test_the_mask_hides_ceil_ratio_of_the_blocks_each_a_whole_block_of_model_patches():
    torch.manual_seed(0)
    gen = SimMIMMaskGenerator(input_size=192, mask_patch_size=32, model_patch_size=4, mask_ratio=0.6)
    for _ in range(5):
        mask = gen.mask()
        assert mask.shape == (48, 48) and mask.dtype == torch.bool
        blocks = mask.view(6, 8, 6, 8)  # 6 x 6 blocks of 8 x 8 model patches
        assert (blocks == blocks[:, :1, :, :1]).all()  # each block all masked or all visible
        assert int(blocks[:, 0, :, 0].sum()) == 22  # ceil(0.6 * 36)
    # the authors' count is ceil, not round: 0.6 of 4 blocks is 3
    assert int(SimMIMMaskGenerator(16, 8, 2, 0.6).mask().sum()) == 3 * 16


def test_the_mask_is_drawn_from_torchs_generator_so_a_seed_repeats_it():
    gen = SimMIMMaskGenerator(input_size=32, mask_patch_size=8, model_patch_size=2, mask_ratio=0.6)
    torch.manual_seed(1)
    first = [gen.mask() for _ in range(3)]
    torch.manual_seed(1)
    again = [gen.mask() for _ in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert len({tuple(m.flatten().tolist()) for m in first}) == 3


def test_mask_generator_settings_that_cannot_work_are_named():
    with pytest.raises(ConfigError, match=r"input_size 30 is not a multiple of mask_patch_size 8"):
        SimMIMMaskGenerator(30, 8, 2)
    with pytest.raises(ConfigError, match=r"mask_patch_size 8 is not a multiple of model_patch_size 3"):
        SimMIMMaskGenerator(32, 8, 3)
    with pytest.raises(ConfigError, match=r"mask_ratio must be in \(0, 1\), got 1.0"):
        SimMIMMaskGenerator(32, 8, 2, 1.0)
    with pytest.raises(ConfigError, match=r"input_size=32 but the pipeline gives \(28, 28\) images"):
        SimMIMMaskGenerator(32, 8, 2)(torch.zeros(3, 28, 28))


def test_the_loss_is_the_l1_distance_on_masked_pixels_averaged_over_those_pixels_and_channels():
    x = torch.zeros(1, 2, 2, 2)
    x_rec = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[-5.0, 6.0], [7.0, 8.0]]]])
    mask = torch.tensor([[[1, 0], [0, 1]]])  # pixels (0, 0) and (1, 1): |1| + |4| + |-5| + |8| over 2 x 2
    assert simmim_reconstruction(x, x_rec, mask).item() == pytest.approx(18 / (2 + 1e-5) / 2)
    assert simmim_reconstruction(x, x_rec, torch.zeros(1, 2, 2)).item() == 0.0  # finite without masked pixels


def test_the_head_widens_the_patch_mask_to_pixels_and_ignores_visible_pixels():
    head = SimMIMHead(patch_size=2)
    img, rec = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[0, 1, 2] = mask[1, 3, 0] = True
    other = rec.clone()
    pixels = mask.repeat_interleave(2, 1).repeat_interleave(2, 2)
    other[pixels[:, None].expand_as(rec) == 0] = 100.0
    loss = head(img, rec, mask)["loss"]
    torch.testing.assert_close(loss, head(img, other, mask)["loss"])
    expected = (rec - img).abs()[pixels[:, None].expand_as(rec)].mean()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


def test_the_linear_decoder_gives_each_encoder_cell_its_own_block_of_pixels():
    torch.manual_seed(0)
    neck = SimMIMNeck(in_channels=8, encoder_stride=4)
    x = torch.randn(1, 8, 2, 3)
    out = neck(x)
    assert out.shape == (1, 3, 8, 12)
    y = x.clone()
    y[0, :, 1, 2] += 1.0  # only the pixels of cell (1, 2) change
    changed = (neck(y) != out).any(dim=1)[0]
    expected = torch.zeros(8, 12, dtype=torch.bool)
    expected[4:8, 8:12] = True
    assert torch.equal(changed, expected)


def test_the_dataset_gives_each_image_its_mask_on_the_models_patch_grid(fmnist_tiny):
    cfg = load_config(TINY).data.train.to_dict()
    cfg.pop("type")
    cfg["data_source"]["root"] = fmnist_tiny
    ds = MaskedImageDataset(**cfg)
    torch.manual_seed(0)
    sample = ds[3]
    torch.manual_seed(0)
    again = ds[3]
    assert sample["img"].shape == (3, 32, 32) and sample["mask"].shape == (8, 8) and sample["idx"] == 3
    assert int(sample["mask"].sum()) == 10 * 4  # 10 of 16 blocks of 2 x 2 patches
    assert torch.equal(sample["mask"], again["mask"]) and torch.equal(sample["img"], again["img"])


def test_two_steps_give_a_finite_loss_and_a_gradient_to_every_trainable_parameter():
    torch.manual_seed(0)
    cfg = load_config(TINY)
    model = build_algorithm(cfg.model).train()
    optimizer = build_optimizer(cfg.optimizer, model)
    gen = SimMIMMaskGenerator(input_size=32, mask_patch_size=8, model_patch_size=4, mask_ratio=0.6)
    for _ in range(2):
        mask = torch.stack([gen.mask() for _ in range(4)])
        loss = model([torch.randn(4, 3, 32, 32)], mask=mask)["loss"]
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        trainable = [n for n, p in model.named_parameters() if p.requires_grad]
        assert trainable and [n for n in trainable if model.get_parameter(n).grad is None] == []
        optimizer.step()
    assert model.backbone.mask_token.grad.abs().sum() > 0


def test_the_recipes_adamw_has_no_weight_decay_on_norms_biases_and_relative_position_biases():
    cfg = load_config(TINY)
    model = build_algorithm(cfg.model)
    opt = build_optimizer(cfg.optimizer, model)
    names = {id(p): n for n, p in model.named_parameters()}
    wd = {names[id(g["params"][0])]: g["weight_decay"] for g in opt.param_groups}
    assert wd["backbone.layers.0.blocks.0.attn.relative_position_bias_table"] == 0.0
    assert wd["backbone.norm.weight"] == wd["backbone.layers.1.downsample.norm.bias"] == 0.0
    assert wd["neck.decoder.0.bias"] == 0.0
    assert wd["backbone.layers.0.blocks.0.attn.qkv.weight"] == wd["neck.decoder.0.weight"] == 0.05
    assert wd["backbone.mask_token"] == 0.05  # the seed's recipe decays it
    assert all(g["betas"] == (0.9, 0.999) for g in opt.param_groups)
    assert cfg.optimizer_config.grad_clip.max_norm == 5.0


def test_settings_that_disagree_with_the_backbone_are_named_at_build_time():
    cfg = load_config(TINY)
    cfg.model.neck.encoder_stride = 16
    with pytest.raises(ConfigError, match=r"model.neck.encoder_stride=16 but the backbone's stage 1 is 8 pixels"):
        build_algorithm(cfg.model)
    cfg = load_config(TINY)
    cfg.model.head.patch_size = 2
    with pytest.raises(ConfigError, match=r"model.head.patch_size=2 but the backbone's is 4"):
        build_algorithm(cfg.model)
    cfg = load_config(TINY)
    cfg.model.backbone.use_mask_token = False
    with pytest.raises(ConfigError, match=r"set model.backbone.use_mask_token=True"):
        build_algorithm(cfg.model)


def test_training_resumes_bit_identically_and_extract_and_features_take_the_swin(fmnist_tiny, tmp_path):
    whole = tmp_path / "whole"
    EpochRunner(load_config(TINY), fmnist_tiny, str(whole)).run()
    (tmp_path / "resumed").mkdir()
    shutil.copy(whole / "epoch_1.pth", tmp_path / "resumed" / "epoch_1.pth")
    torch.manual_seed(123)  # the resumed run must take its random state (crops, masks) from the checkpoint
    train(TINY, fmnist_tiny, str(tmp_path / "resumed"))
    a, b = load_checkpoint(str(whole / "epoch_2.pth")), load_checkpoint(str(tmp_path / "resumed" / "epoch_2.pth"))
    assert a["meta"]["iter"] == b["meta"]["iter"] == 8
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, msg=key)
    extract(str(tmp_path / "resumed"), str(tmp_path / "backbone"))
    out = features(fmnist_tiny, str(tmp_path / "backbone"), str(tmp_path / "feats"), baselines=False, batch_size=16)
    assert out["layers"] == ["avgpool"]
    x = np.load(tmp_path / "feats" / "test.pretrained.avgpool.npy")
    assert x.shape == (40, 32)  # the last stage's 32 channels, averaged over its map
    model = build_algorithm(load_config(TINY).model)
    model.load_state_dict(b["state_dict"])
    ds = eval_dataset(fmnist_tiny, "test", load_backbone_meta(str(tmp_path / "backbone"))["eval_pipeline"])
    with torch.no_grad():
        last = model.backbone.eval()(torch.stack([ds[i]["img"] for i in range(3)]))[-1]
    np.testing.assert_allclose(x[:3], last.mean(dim=(2, 3)).numpy(), rtol=1e-5, atol=1e-5)


def test_the_seeds_imagenet_recipe_loads_and_builds_a_swin_base_with_the_linear_decoder():
    cfg = load_config(IN1K)
    with torch.device("meta"):
        model = build_algorithm(cfg.model)
    assert type(model).__name__ == "SimMIM"
    encoder = sum(p.numel() for n, p in model.backbone.named_parameters() if n != "mask_token")
    assert encoder == 86_725_176  # timm's Swin-B at 192 px with windows of 6, without classifier
    assert model.backbone.layers[0].blocks[0].window_size == (6, 6) and model.neck.encoder_stride == 32
    assert model.neck.decoder[0].in_channels == 1024 and model.neck.decoder[0].out_channels == 32 * 32 * 3
    gen = cfg.data.train.mask_generator
    assert (gen.input_size, gen.mask_patch_size, gen.model_patch_size, gen.mask_ratio) == (192, 32, 4, 0.6)
    assert cfg.data.samples_per_gpu == 128 and cfg.optimizer.type == "AdamW"
    assert cfg.optimizer.lr == pytest.approx(2e-4 * 2048 / 512) and cfg.optimizer.betas == (0.9, 0.999)
    assert cfg.optimizer.weight_decay == 0.05 and cfg.optimizer_config.grad_clip.max_norm == 5.0
    assert (cfg.lr_config.policy, cfg.lr_config.warmup_iters, cfg.lr_config.warmup_by_epoch, cfg.lr_config.by_epoch,
            cfg.lr_config.min_lr, cfg.runner.max_epochs) == ("CosineAnnealing", 10, True, False, 4e-5, 100)
