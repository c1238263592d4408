"""Relative Location: the dataset's grid and labels, the neck, the flattened batch, training, resume, extract,
recipes."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_lib.config import load_config
from ssl_lib.data.datasets import RelativeLocDataset
from ssl_lib.engine.checkpoint import load as load_checkpoint
from ssl_lib.engine.optimizer import build_optimizer
from ssl_lib.engine.train import train
from ssl_lib.errors import ConfigError
from ssl_lib.models import RelativeLocNeck, build_algorithm
from ssl_lib.stages.extract import extract

TINY = str(Path(__file__).parent / "configs" / "relative-loc_resnet18-w8_1xb16-steplr-2e_fmnist.py")
IN1K = ["selfsup/relative_loc/relative-loc_resnet50_8xb64-steplr-70e_in1k.py"]
# (row, column) of the neighbour each label names, as the seed numbers them: row-major, centre skipped
POSITIONS = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)]


class Images:
    """A data source of given PIL images."""

    def __init__(self, images: list[Image.Image]):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def get_image(self, i: int) -> Image.Image:
        return self.images[i]

    def get_label(self, i: int) -> int:
        return i


def grid_dataset(pixels: np.ndarray, patch_jitter: int) -> RelativeLocDataset:
    return RelativeLocDataset(Images([Image.fromarray(pixels)]), pipeline=[], format_pipeline=[dict(type="ToTensor")],
                              patch_jitter=patch_jitter)


def test_each_label_pairs_its_grid_cell_with_the_centre_and_the_patch_stays_inside_the_cell():
    # 30 wide x 36 tall: cells 10 x 12; cell (r, c) is filled with the value 20 * (3r + c) + 10
    cells = np.arange(9, dtype=np.uint8).reshape(3, 3) * 20 + 10
    pixels = np.kron(cells, np.ones((12, 10), dtype=np.uint8))
    ds = grid_dataset(pixels, patch_jitter=4)
    torch.manual_seed(0)
    for _ in range(20):  # a patch crossing into the next cell would not be constant
        sample = ds[0]
        img = sample["img"] * 255
        assert img.shape == (8, 2, 8, 6) and sample["patch_label"].tolist() == list(range(8))
        for label, (r, c) in enumerate(POSITIONS):
            assert torch.all(img[label, 0].round() == cells[r, c]), (label, r, c)
            assert torch.all(img[label, 1].round() == cells[1, 1])


def test_the_jitter_moves_each_patch_anywhere_in_its_cell_and_nowhere_else():
    # every pixel holds its own column (red) and row (green), so a patch tells where it was cut
    h, w, jitter = 36, 30, 4
    ys, xs = np.mgrid[0:h, 0:w]
    pixels = np.stack([xs * 8, ys * 7, np.zeros_like(xs)], axis=-1).astype(np.uint8)
    ds = grid_dataset(pixels, patch_jitter=jitter)
    torch.manual_seed(0)
    offsets = set()
    for _ in range(200):
        img = ds[0]["img"] * 255
        for label, (r, c) in enumerate([*POSITIONS, (1, 1)]):
            patch = img[min(label, 7), 3:] if (r, c) == (1, 1) else img[label, :3]
            cols, rows = (patch[0] / 8).round(), (patch[1] / 7).round()
            top, left = int(rows[0, 0]), int(cols[0, 0])
            assert torch.equal(cols, left + torch.arange(6.0).expand(8, 6))  # contiguous, 6 wide
            assert torch.equal(rows, top + torch.arange(8.0)[:, None].expand(8, 6))  # 8 tall
            dy, dx = top - 12 * r, left - 10 * c
            assert 0 <= dy <= jitter and 0 <= dx <= jitter, (label, top, left)
            offsets.add((dy, dx))
    assert offsets == {(dy, dx) for dy in range(jitter + 1) for dx in range(jitter + 1)}


def test_an_image_too_small_for_the_jitter_names_the_fix():
    ds = grid_dataset(np.zeros((28, 28), dtype=np.uint8), patch_jitter=9)
    with pytest.raises(ConfigError, match="9x9 grid cells, too small for patch_jitter=9.*below 9"):
        ds[0]


def test_neck_is_fc_bn_relu_on_the_two_patches_features_with_the_seeds_bn_momentum():
    neck = RelativeLocNeck(in_channels=2, out_channels=2)
    assert neck.fc.in_features == 4 and neck.bn.momentum == 0.003
    assert set(neck.state_dict()) >= {"fc.weight", "fc.bias", "bn.weight", "bn.bias", "bn.running_mean"}
    with torch.no_grad():
        neck.fc.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, -1.0, 0.0, 0.0]]))
        neck.fc.bias.copy_(torch.tensor([0.5, 0.0]))
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 4, 1, 1).expand(1, 4, 2, 2)  # pooled: [1, 2, 3, 4]
    (out,) = neck.eval()((x,))
    # fc: [1 + 4 + 0.5, -2] -> BN with running stats 0 / 1 -> ReLU
    torch.testing.assert_close(out, torch.tensor([[5.5 / math.sqrt(1 + 1e-5), 0.0]]))
    neck.train()((torch.cat([x, 3 * x]),))  # fc outputs [5.5, -2] and [15.5, -6]: batch means 10.5, -4
    torch.testing.assert_close(neck.bn.running_mean, torch.tensor([0.003 * 10.5, 0.003 * -4.0]))
    with pytest.raises(ConfigError, match="2 x in_channels=4 channels, got 2"):
        neck((torch.randn(2, 2, 1, 1),))


def tiny_model():
    cfg = load_config(TINY)
    return cfg, build_algorithm(cfg.model)


def batch(n: int = 4, size: int = 8) -> tuple[list[torch.Tensor], torch.Tensor]:
    return [torch.randn(n, 8, 6, size, size)], torch.arange(8).repeat(n, 1)


def test_two_steps_give_a_finite_loss_and_every_trainable_parameter_a_gradient():
    torch.manual_seed(0)
    cfg, model = tiny_model()
    model.train()
    optimizer = build_optimizer(cfg.optimizer, model)
    for _ in range(2):
        img, labels = batch()
        outputs = model(img, mode="train", patch_label=labels, idx=torch.arange(4))
        assert torch.isfinite(outputs["loss"])
        optimizer.zero_grad()
        outputs["loss"].backward()
        missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
        assert missing == []
        optimizer.step()


def test_flattening_keeps_each_pair_with_its_label_and_splits_neighbour_from_centre():
    torch.manual_seed(0)
    _, model = tiny_model()
    img, _ = batch(n=3)
    labels = torch.stack([torch.randperm(8) for _ in range(3)])
    seen = []
    model.backbone.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    head_loss = model.head.loss
    got = {}

    def spy(scores, target):
        got["labels"] = target
        return head_loss(scores, target)

    model.head.loss = spy
    model(img, patch_label=labels)
    neighbour, centre = seen
    for row in range(24):
        n, k = divmod(row, 8)
        assert torch.equal(neighbour[row], img[0][n, k, :3]) and torch.equal(centre[row], img[0][n, k, 3:])
        assert got["labels"][row] == labels[n, k]


def test_missing_labels_odd_channels_and_multi_view_data_are_config_errors():
    _, model = tiny_model()
    img, labels = batch(n=2)
    with pytest.raises(ConfigError, match="needs `patch_label`.*RelativeLocDataset"):
        model(img)
    with pytest.raises(ConfigError, match=r"patch_label \[2, 4\]"):
        model(img, patch_label=labels[:, :4])
    with pytest.raises(ConfigError, match="two patches on the channel dim.*got 5 channels"):
        model([img[0][:, :, :5]], patch_label=labels)
    with pytest.raises(ConfigError, match="RelativeLocDataset"):
        model.check_data(num_samples=64, global_batch=16, num_views=2)
    model.check_data(num_samples=64, global_batch=16, num_views=None)


def test_a_head_that_does_not_read_the_necks_width_is_named_at_build_time():
    cfg = load_config(TINY)
    cfg.model.head.in_channels = 16
    with pytest.raises(ConfigError, match="model.head.in_channels=16 does not match model.neck.out_channels=32"):
        build_algorithm(cfg.model)


def test_checkpoint_resume_and_extract_on_fashion_mnist(fmnist_tiny, tmp_path):
    work = tmp_path / "work"
    first = train(TINY, fmnist_tiny, str(work), ["runner.max_epochs=1"])
    assert first["iterations"] == 4  # 64 images / batch 16
    resumed = train(TINY, fmnist_tiny, str(work))  # resumes after epoch 1, runs epoch 2
    assert resumed["iterations"] == 8 and np.isfinite(resumed["final_loss"])
    out = extract(str(work), str(tmp_path / "bb"))
    assert out["algorithm"] == "RelativeLoc" and out["epoch"] == 2
    state = load_checkpoint(str(work / "epoch_2.pth"))["state_dict"]
    weights = torch.load(out["weights"], weights_only=True)
    assert weights.keys() == {k.removeprefix("backbone.") for k in state if k.startswith("backbone.")}
    assert all(torch.equal(v, state[f"backbone.{k}"]) for k, v in weights.items())


@pytest.mark.parametrize("config", IN1K)
def test_the_seeds_imagenet_recipe_loads_and_builds(config):
    cfg = load_config(config)
    model = build_algorithm(cfg.model)
    assert type(model).__name__ == "RelativeLoc" and model.neck.fc.in_features == 4096
    assert model.head.fc_cls.out_features == 8
    assert cfg.data.train.type == "RelativeLocDataset" and cfg.data.samples_per_gpu == 64
    assert cfg.optimizer.paramwise_options["\\Aneck."] == dict(weight_decay=5e-4)
    assert cfg.lr_config.step == [30, 50] and cfg.runner.max_epochs == 70
