"""CAE: BEiT's blockwise mask, the DALL-E tokenizer, the loss, the encoder / regressor / teacher, the data,
training, resume, extract and features, the seed's recipe."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from timm.models.vision_transformer import VisionTransformer as TimmViT

from ssl_lib.benchmarks.features import build_backbone, eval_dataset, extract_features, load_backbone_meta
from ssl_lib.config import load_config
from ssl_lib.data.datasets.cae import BEiTMaskGenerator, CAEDataset
from ssl_lib.engine.checkpoint import load as load_checkpoint
from ssl_lib.engine.optimizer import build_optimizer
from ssl_lib.engine.runner import EpochRunner
from ssl_lib.engine.train import train
from ssl_lib.errors import ConfigError
from ssl_lib.models import build_algorithm
from ssl_lib.models.cae_vit import CAEViT
from ssl_lib.models.dalle import DALLEEncoder
from ssl_lib.models.heads.cae_head import CAEHead
from ssl_lib.models.losses import cae_loss
from ssl_lib.stages.extract import extract

TINY = str(Path(__file__).parent / "configs" / "cae_vit-d32-l2-p4_1xb16-coslr-2e_fmnist.py")
IN1K = "selfsup/cae/cae_vit-base-p16_16xb128-coslr-300e_in1k.py"
TINY_VIT = dict(arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64), img_size=32,
                patch_size=4, qkv_bias=False)


def differ(a: torch.Tensor, b: torch.Tensor) -> bool:
    """More than float rounding apart (kernels for other shapes round differently)."""
    return float((a - b).detach().abs().max()) > 1e-3


def tiny_batch(b: int = 4, seed: int = 0) -> tuple[list[torch.Tensor], torch.Tensor]:
    """[model view 32 px, tokenizer view 64 px in DALL-E's range] and 24 of 64 patches masked per image."""
    torch.manual_seed(seed)
    gen = BEiTMaskGenerator(input_size=8, num_masking_patches=24, min_num_patches=4)
    return [torch.randn(b, 3, 32, 32), 0.1 + 0.8 * torch.rand(b, 3, 64, 64)], torch.stack([gen() for _ in range(b)])


# -- BEiT's blockwise mask ---------------------------------------------------------------------------

@pytest.mark.parametrize("grid,count,smallest", [((14, 14), 75, 16), ((8, 8), 24, 4), ((8, 8), 63, 4), ((6, 10), 1, 1)])
def test_the_mask_has_exactly_the_asked_number_of_patches_on_the_grid(grid, count, smallest):
    gen = BEiTMaskGenerator(input_size=grid, num_masking_patches=count, min_num_patches=smallest)
    for seed in range(30):
        torch.manual_seed(seed)
        mask = gen()
        assert mask.shape == grid and mask.dtype == torch.bool and int(mask.sum()) == count


def _neighbours_per_masked_patch(mask: torch.Tensor) -> float:
    """Masked pairs side by side (rows and columns) per masked patch: ~2 for large blocks, ~0.7 scattered."""
    m = mask.float()
    return float(((m[1:] * m[:-1]).sum() + (m[:, 1:] * m[:, :-1]).sum()) / m.sum())


def test_the_mask_is_made_of_blocks_not_scattered_patches():
    gen = BEiTMaskGenerator(input_size=(14, 14), num_masking_patches=75, min_num_patches=16)
    torch.manual_seed(0)
    blocky = sum(_neighbours_per_masked_patch(gen()) for _ in range(20)) / 20
    scattered = sum(_neighbours_per_masked_patch(torch.randperm(196).view(14, 14) < 75) for _ in range(20)) / 20
    assert blocky > 1.4 and scattered < 0.9
    # a single block when the count is one rectangle's worth and every side fits
    gen = BEiTMaskGenerator(input_size=(8, 8), num_masking_patches=4, min_num_patches=4, min_aspect=1.0)
    for seed in range(10):
        torch.manual_seed(seed)
        rows, cols = gen().nonzero(as_tuple=True)
        assert (rows.max() - rows.min(), cols.max() - cols.min()) == (1, 1), seed


def test_the_mask_is_drawn_from_torchs_generator_so_a_seed_fixes_it():
    gen = BEiTMaskGenerator(input_size=(14, 14), num_masking_patches=75)
    torch.manual_seed(7)
    a = [gen() for _ in range(3)]
    torch.manual_seed(7)
    b = [gen() for _ in range(3)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], a[1])


def test_mask_generator_settings_that_cannot_work_are_named():
    with pytest.raises(ConfigError, match=r"num_masking_patches=80 must be in 1..64"):
        BEiTMaskGenerator(input_size=8, num_masking_patches=80)
    with pytest.raises(ConfigError, match=r"min_num_patches=30 <= max_num_patches=24"):
        BEiTMaskGenerator(input_size=8, num_masking_patches=24, min_num_patches=30)


# -- the DALL-E tokenizer ------------------------------------------------------------------------------

def test_the_tokenizer_has_openais_names_and_an_8x_downsampling_to_its_vocabulary():
    enc = DALLEEncoder(n_hid=8, n_blk_per_group=2, vocab_size=32)
    names = set(enc.state_dict())
    assert {"blocks.input.w", "blocks.input.b", "blocks.group_1.block_1.res_path.conv_1.w",
            "blocks.group_2.block_1.id_path.w", "blocks.group_4.block_2.res_path.conv_4.b",
            "blocks.output.conv.w"} <= names
    assert "blocks.group_1.block_1.id_path.w" not in names  # same width: the identity
    assert enc.blocks.input.w.shape == (8, 3, 7, 7) and enc.blocks.output.conv.w.shape == (32, 64, 1, 1)
    x = torch.rand(2, 3, 48, 32)
    assert enc(x).shape == (2, 32, 6, 4)
    tokens = enc.tokens(x)
    assert tokens.shape == (2, 24) and tokens.dtype == torch.long
    assert torch.equal(tokens, enc(x).argmax(1).flatten(1))


def test_a_random_tokenizer_is_the_same_for_a_seed_and_leaves_torchs_generator_alone():
    state = torch.get_rng_state()
    a, b, c = DALLEEncoder(n_hid=8, vocab_size=16), DALLEEncoder(n_hid=8, vocab_size=16), \
        DALLEEncoder(n_hid=8, vocab_size=16, seed=1)
    assert torch.equal(torch.get_rng_state(), state)  # every process of a DDP job draws the same tokenizer
    for key, value in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[key], value)
    assert not torch.equal(a.blocks.input.w, c.blocks.input.w)


def test_the_tokenizer_is_frozen_and_stays_in_eval_mode():
    enc = DALLEEncoder(n_hid=8, vocab_size=16)
    assert not any(p.requires_grad for p in enc.parameters())
    assert not enc.train().training
    model = build_algorithm(load_config(TINY).model).train()
    assert not model.head.tokenizer.training
    optimized = {id(p) for g in build_optimizer(load_config(TINY).optimizer, model).param_groups for p in g["params"]}
    assert not optimized & {id(p) for p in model.head.tokenizer.parameters()}


def test_tokenizer_weights_load_from_the_path_and_a_missing_file_is_named_with_how_to_get_it(tmp_path):
    enc = DALLEEncoder(n_hid=8, vocab_size=16, seed=3)
    torch.save(enc.state_dict(), tmp_path / "encoder.pth")
    torch.save({f"encoder.{k}": v for k, v in enc.state_dict().items()}, tmp_path / "prefixed.pth")
    x = torch.rand(1, 3, 16, 16)
    for name in ("encoder.pth", "prefixed.pth"):
        other = DALLEEncoder(n_hid=8, vocab_size=16)
        other.load(str(tmp_path / name))
        torch.testing.assert_close(other(x), enc(x))
    missing = str(tmp_path / "cae_ckpt" / "encoder_stat_dict.pth")
    head = CAEHead(tokenizer_path=missing, tokenizer=dict(n_hid=8, vocab_size=16))  # builds without the file
    with pytest.raises(ConfigError, match=r"tokenizer_path=.*cae_ckpt/encoder_stat_dict.pth.*download.*DALL-E"):
        head(torch.rand(1, 3, 16, 16), torch.zeros(1, 1, 16), torch.zeros(1, 1, 4), torch.zeros(1, 1, 4),
             torch.tensor([[True, False, False, False]]))


# -- the loss ----------------------------------------------------------------------------------------

def test_cae_loss_is_token_cross_entropy_plus_lambd_times_latent_mse():
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])  # 2 masked patches, 3 tokens
    target = torch.tensor([[0, 2]])
    pred, teacher = torch.tensor([[[1.0, 2.0], [0.0, 0.0]]]), torch.tensor([[[1.0, 0.0], [3.0, 0.0]]])
    main, align = cae_loss(logits, target, pred, teacher, lambd=2.0)
    ce = (-(2 - math.log(math.exp(2) + 2)) - (0 - math.log(2 + math.e))) / 2
    assert main.item() == pytest.approx(ce)
    assert align.item() == pytest.approx(2.0 * (4 + 9) / 4)
    teacher.requires_grad_(True)
    pred.requires_grad_(True)
    cae_loss(logits, target, pred, teacher)[1].backward()
    assert teacher.grad is None and pred.grad is not None  # the teacher's latents are a target


def test_the_head_scores_the_tokens_of_the_masked_patches_only():
    torch.manual_seed(0)
    head = CAEHead(tokenizer_path=None, tokenizer=dict(n_hid=8, vocab_size=16))
    img = torch.rand(2, 3, 16, 16)  # 2 x 2 tokens
    mask = torch.tensor([[True, False, False, True], [False, True, True, False]])
    logits, latent = torch.randn(2, 2, 16), torch.randn(2, 2, 4)
    tokens = head.tokenizer.tokens(img)
    want = torch.nn.functional.cross_entropy(logits.reshape(4, 16), torch.stack([tokens[0, [0, 3]], tokens[1, [1, 2]]])
                                             .reshape(4))
    out = head(img, logits, latent, latent + 1, mask)
    torch.testing.assert_close(out["loss_main"], want)
    torch.testing.assert_close(out["loss"], want + 2.0)


# -- encoder, regressor, teacher ------------------------------------------------------------------------

def test_a_timm_vit_with_layer_scale_loads_strictly_into_caevit_and_gives_timms_features(tmp_path):
    torch.manual_seed(0)
    timm_vit = TimmViT(img_size=32, patch_size=4, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0, qkv_bias=False,
                       init_values=0.1, num_classes=0).eval()
    with torch.no_grad():
        for block in timm_vit.blocks:
            block.ls1.gamma.uniform_(0.5, 1.5)
    torch.save(timm_vit.state_dict(), tmp_path / "timm.pth")
    ours = CAEViT(**TINY_VIT, init_values=0.1, init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "timm.pth")))
    assert isinstance(ours.blocks[0].ls1.gamma, torch.nn.Parameter)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        cls = ours.eval()(x)[-1][1]
        torch.testing.assert_close(cls, timm_vit.forward_features(x)[:, 0])
        # no patch masked: the masked forward is the plain one
        torch.testing.assert_close(ours.forward_visible(x, torch.zeros(2, 64, dtype=torch.bool))[:, 0], cls)
    fresh = CAEViT(**TINY_VIT, init_values=0.1)
    assert torch.all(fresh.blocks[1].ls2.gamma == 0.1) and not fresh.pos_embed.requires_grad  # fixed sin-cos


def test_the_encoder_never_sees_the_masked_patches_and_the_teacher_only_sees_them():
    torch.manual_seed(0)
    vit = CAEViT(**TINY_VIT, init_values=0.1).eval()
    (x, _), mask = tiny_batch(2)
    mask = mask.flatten(1)
    pixel_mask = mask.view(2, 8, 8).repeat_interleave(4, 1).repeat_interleave(4, 2)[:, None].expand(-1, 3, -1, -1)
    noise = torch.randn_like(x)
    masked_changed, visible_changed = x + noise * pixel_mask, x + noise * ~pixel_mask
    with torch.no_grad():
        visible = vit.forward_visible(x, mask)
        assert visible.shape == (2, 1 + 40, 32)
        torch.testing.assert_close(vit.forward_visible(masked_changed, mask), visible)
        assert differ(vit.forward_visible(visible_changed, mask), visible)
        torch.testing.assert_close(vit.forward_visible(visible_changed, ~mask), vit.forward_visible(x, ~mask))
        # each visible patch keeps its own position: timm's embedding of the whole image, visible rows kept
        tokens = vit._pos_embed(vit.patch_embed(x))
        rows = torch.cat([torch.zeros(2, 1, dtype=torch.bool), ~mask], dim=1)
        rows[:, 0] = True
        want = vit.norm(vit.blocks(tokens[rows].reshape(2, 41, 32)))
        torch.testing.assert_close(visible, want)


def test_two_steps_train_every_trainable_parameter_and_the_teacher_follows_the_momentum_rule():
    cfg = load_config(TINY)
    cfg.model.base_momentum = 0.25
    torch.manual_seed(0)
    model = build_algorithm(cfg.model).train()
    optimizer = build_optimizer(cfg.optimizer, model)
    for step in range(2):
        img, mask = tiny_batch(4, seed=step)
        teacher_before = [p.clone() for p in model.teacher.parameters()]
        out = model(img, mask=mask)
        assert torch.isfinite(out["loss"]) and out["loss"] > 0
        torch.testing.assert_close(out["loss"], out["loss_main"] + out["loss_align"])
        for p_online, p_teacher, before in zip(model.backbone.parameters(), model.teacher.parameters(), teacher_before):
            torch.testing.assert_close(p_teacher, 0.25 * before + 0.75 * p_online)
        optimizer.zero_grad()
        out["loss"].backward()
        trainable = [n for n, p in model.named_parameters() if p.requires_grad]
        assert trainable and [n for n in trainable if model.get_parameter(n).grad is None] == []
        assert all(p.grad is None for p in [*model.teacher.parameters(), *model.head.parameters()])
        optimizer.step()
    assert not any(n.startswith(("teacher.", "head.")) for n in trainable)


def test_with_the_seeds_momentum_0_the_target_is_the_current_encoder_on_the_masked_patches():
    torch.manual_seed(0)
    model = build_algorithm(load_config(TINY).model).train()
    optimizer = build_optimizer(load_config(TINY).optimizer, model)
    targets = []
    teacher_forward = model.teacher.forward_visible
    model.teacher.forward_visible = lambda x, m: targets.append(teacher_forward(x, m)) or targets[-1]
    for step in range(3):
        img, mask = tiny_batch(4, seed=step)
        with torch.no_grad():
            want = model.backbone.forward_visible(img[0], ~mask.flatten(1))
        model(img, mask=mask)["loss"].backward()
        torch.testing.assert_close(targets[-1], want)
        for p_backbone, p_teacher in zip(model.backbone.parameters(), model.teacher.parameters()):
            assert torch.equal(p_teacher, p_backbone)
        optimizer.step()
        optimizer.zero_grad()


def test_the_regressor_predicts_masked_latents_from_the_visible_ones():
    torch.manual_seed(0)
    model = build_algorithm(load_config(TINY).model).eval()
    visible, pos = torch.randn(2, 40, 32), model.backbone.pos_embed[:, 1:].expand(2, -1, -1)
    pos_masked, pos_visible = pos[:, :24], pos[:, 24:]
    logits, latent = model.neck(visible, pos_masked, pos_visible)
    assert logits.shape == (2, 24, 64) and latent.shape == (2, 24, 32)
    other_logits, other_latent = model.neck(visible + torch.randn_like(visible), pos_masked, pos_visible)
    assert differ(other_latent, latent)
    # one prediction per masked position: swapping two masked positions swaps their predictions
    assert differ(latent[:, 0], latent[:, 1])
    swapped = pos_masked[:, [1, 0, *range(2, 24)]]
    torch.testing.assert_close(model.neck(visible, swapped, pos_visible)[1][:, [1, 0]], latent[:, :2])
    # the queries attend to each other too (the keys are [visible latents, mask queries]), as the paper
    alone = model.neck(visible, pos_masked[:, :1], pos_visible)[1]
    assert differ(alone[:, 0], latent[:, 0])


def test_widths_and_sizes_that_disagree_are_named():
    cfg = load_config(TINY)
    cfg.model.neck.num_classes = 100
    with pytest.raises(ConfigError, match=r"model.neck.num_classes=100 but the tokenizer has 64 tokens"):
        build_algorithm(cfg.model)
    model = build_algorithm(load_config(TINY).model)
    (x, x_tok), mask = tiny_batch(2)
    with pytest.raises(ConfigError, match=r"gives 16 tokens for 64 patches.*second_size=64"):
        model([x, x_tok[..., :32, :32]], mask=mask)


# -- data ----------------------------------------------------------------------------------------------

class _Gradient:
    """A data source of one 28 px image whose value grows from left to right."""

    def __len__(self) -> int:
        return 1

    def get_image(self, idx: int) -> Image.Image:
        row = torch.linspace(0, 255, 28).round().to(torch.uint8)
        return Image.fromarray(row.expand(28, 28).contiguous().numpy()).convert("RGB")

    def get_label(self, idx: int) -> int:
        return 0


def test_the_dataset_gives_two_views_of_one_crop_and_the_mask():
    cfg = load_config(TINY).data.train.to_dict()
    cfg["data_source"] = _Gradient()
    ds = CAEDataset(**{k: v for k, v in cfg.items() if k != "type"})
    norm = cfg["img_norm_cfg"]
    torch.manual_seed(0)
    for _ in range(10):
        sample = ds[0]
        view, target = sample["img"]
        assert view.shape == (3, 32, 32) and target.shape == (3, 64, 64)
        assert 0.1 - 1e-6 <= float(target.min()) and float(target.max()) <= 0.9 + 1e-6  # map_pixels
        pixels = view[0] * norm["std"][0] + norm["mean"][0]
        # the same crop: the same columns of the gradient, whatever the flip did
        assert abs(float(pixels.mean()) - float((target[0].mean() - 0.1) / 0.8)) < 0.02
        assert sample["mask"].shape == (8, 8) and int(sample["mask"].sum()) == 24


# -- training, resume, extract, features, the seed's recipe -----------------------------------------------

def test_training_resumes_bit_identically_and_extract_gives_a_caevit_that_loads_its_weights(fmnist_tiny, tmp_path):
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
    meta = load_backbone_meta(str(tmp_path / "backbone"))
    assert meta["backbone"]["type"] == "CAEViT"
    cfg = {k: v for k, v in meta["backbone"].items() if k != "type"}
    vit = CAEViT(**cfg, init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "backbone" / "backbone.pth")))
    for key, value in vit.state_dict().items():
        torch.testing.assert_close(value, b["state_dict"][f"backbone.{key}"])


def test_features_of_a_cae_backbone_are_its_cls_token(fmnist_tiny):
    torch.manual_seed(0)
    model = build_algorithm(load_config(TINY).model).eval()
    backbone = build_backbone(load_config(TINY).model.backbone.to_dict(), model.backbone.state_dict())
    ds = eval_dataset(fmnist_tiny, "test", load_config(TINY).eval_pipeline)
    feats, labels = extract_features(backbone, ds, layers=("avgpool",), batch_size=20, device="cpu")
    with torch.no_grad():
        want = model.backbone(torch.stack([ds[i]["img"] for i in range(40)]))[-1][1]
    torch.testing.assert_close(torch.from_numpy(feats["avgpool"]), want)


def test_the_seeds_imagenet_recipe_loads_and_builds_a_vit_base_with_caes_regressor_and_decoder():
    cfg = load_config(IN1K)
    with torch.device("meta"):
        model = build_algorithm(cfg.model)
    assert type(model).__name__ == "CAE" and model.base_momentum == 0.0
    # timm's ViT-B/16 without its head, plus two layer scales per block (the key third of the qkv bias
    # stands for nothing in the seed's q / v biases: it never changes an attention weight)
    assert sum(p.numel() for p in model.backbone.parameters()) == 86_567_656 - 769_000 + 12 * 2 * 768
    assert model.backbone.blocks[0].attn.qkv.bias.shape == (3 * 768,) and model.backbone.blocks[0].ls1.gamma.shape == (768,)
    assert (len(model.neck.regressors), len(model.neck.decoders), model.neck.head.out_features) == (4, 4, 8192)
    assert model.head.tokenizer_path == "cae_ckpt/encoder_stat_dict.pth" and model.head.lambd == 2.0
    train_cfg = cfg.data.train
    assert (train_cfg.mask_generator.input_size, train_cfg.mask_generator.num_masking_patches) == ((14, 14), 75)
    assert (train_cfg.pipeline[-1].size, train_cfg.pipeline[-1].second_size) == (224, 112)
    assert cfg.data.samples_per_gpu == 128
    assert cfg.optimizer.type == "AdamW" and cfg.optimizer.lr == pytest.approx(1.5e-3)
    assert cfg.optimizer.betas == (0.9, 0.999) and cfg.optimizer.weight_decay == 0.05
    assert set(cfg.optimizer.paramwise_options) == {"norm", "bias", "gamma"}
    assert cfg.optimizer_config.grad_clip.max_norm == 3.0
    assert (cfg.lr_config.warmup_iters, cfg.lr_config.min_lr, cfg.runner.max_epochs) == (10, 1e-5, 300)
