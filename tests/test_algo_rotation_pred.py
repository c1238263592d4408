"""Rotation Prediction: the dataset's four rotations, the flattened batch, training, resume, extract, recipes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_lib.config import load_config
from ssl_lib.data.datasets import RotationPredDataset
from ssl_lib.engine.checkpoint import load as load_checkpoint
from ssl_lib.engine.optimizer import build_optimizer
from ssl_lib.engine.train import train
from ssl_lib.errors import ConfigError
from ssl_lib.models import build_algorithm
from ssl_lib.stages.extract import extract

TINY = str(Path(__file__).parent / "configs" / "rotation-pred_resnet18-w8_1xb16-steplr-2e_fmnist.py")
IN1K = ["selfsup/rotation_pred/rotation-pred_resnet50_8xb16-steplr-70e_in1k.py"]


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


def test_rotation_k_is_k_quarter_turns_counter_clockwise_and_labelled_k():
    pixels = np.arange(9, dtype=np.uint8).reshape(3, 3) * 20  # rows [0 20 40] [60 80 100] [120 140 160]
    ds = RotationPredDataset(Images([Image.fromarray(pixels)]), pipeline=[dict(type="ToTensor")])
    sample = ds[0]
    img, grey = sample["img"], torch.from_numpy(pixels).float() / 255
    assert img.shape == (4, 1, 3, 3) and sample["rot_label"].tolist() == [0, 1, 2, 3] and sample["idx"] == 0
    by_hand = [grey,
               grey[:, [2, 1, 0]].T,  # 90 counter-clockwise: the right column becomes the top row
               grey.flip(0).flip(1),
               grey[[2, 1, 0]].T]  # 270: the bottom row, read left to right, becomes the right column
    for k in range(4):
        torch.testing.assert_close(img[k, 0], by_hand[k], rtol=0, atol=0)
        torch.testing.assert_close(img[k], torch.rot90(img[0], k, dims=(1, 2)), rtol=0, atol=0)
    assert img[1, 0, 0, 0] == grey[0, 2]  # top-left of the 90-degree view is the original's top-right


def test_the_dataset_refuses_a_pipeline_without_a_tensor_or_a_square_view():
    img = Image.new("L", (4, 6))
    with pytest.raises(ConfigError, match="must end in a CxHxW tensor"):
        RotationPredDataset(Images([img]), pipeline=[])[0]
    with pytest.raises(ConfigError, match="must be square.*4x6"):
        RotationPredDataset(Images([img]), pipeline=[dict(type="ToTensor")])[0]


def tiny_model():
    cfg = load_config(TINY)
    return cfg, build_algorithm(cfg.model)


def batch(n: int = 4, size: int = 16) -> tuple[list[torch.Tensor], torch.Tensor]:
    x = torch.randn(n, 3, size, size)
    return [torch.stack([torch.rot90(x, k, dims=(2, 3)) for k in range(4)], dim=1)], torch.arange(4).repeat(n, 1)


def test_two_steps_give_a_finite_loss_and_every_trainable_parameter_a_gradient():
    torch.manual_seed(0)
    cfg, model = tiny_model()
    model.train()
    optimizer = build_optimizer(cfg.optimizer, model)
    for _ in range(2):
        img, labels = batch()
        outputs = model(img, mode="train", rot_label=labels, idx=torch.arange(4))
        assert torch.isfinite(outputs["loss"])
        optimizer.zero_grad()
        outputs["loss"].backward()
        missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
        assert missing == []
        optimizer.step()


def test_flattening_keeps_each_rotation_with_its_own_label():
    torch.manual_seed(0)
    _, model = tiny_model()
    img = torch.randn(3, 4, 3, 8, 8)
    labels = torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]])
    seen = {}
    model.backbone.register_forward_hook(lambda m, args, out: seen.update(img=args[0]))
    head_loss = model.head.loss

    def spy(scores, target):
        seen["labels"] = target
        return head_loss(scores, target)

    model.head.loss = spy
    model([img], rot_label=labels)
    for row in range(12):
        n, k = divmod(row, 4)
        assert torch.equal(seen["img"][row], img[n, k]) and seen["labels"][row] == labels[n, k]


def test_missing_or_misshapen_rotation_labels_and_multi_view_data_are_config_errors():
    _, model = tiny_model()
    img, labels = batch(n=2)
    with pytest.raises(ConfigError, match="needs `rot_label`.*RotationPredDataset"):
        model(img)
    with pytest.raises(ConfigError, match=r"rot_label \[2, 3\]"):
        model(img, rot_label=labels[:, :3])
    with pytest.raises(ConfigError, match=r"img \[8, 3, 16, 16\]"):
        model([img[0].flatten(0, 1)], rot_label=labels)
    with pytest.raises(ConfigError, match="RotationPredDataset"):
        model.check_data(num_samples=64, global_batch=16, num_views=2)
    model.check_data(num_samples=64, global_batch=16, num_views=None)


def test_a_head_narrower_than_the_backbone_is_named_at_build_time():
    cfg = load_config(TINY)
    cfg.model.head.in_channels = 32
    with pytest.raises(ConfigError, match="model.head.in_channels=32 .* set model.head.in_channels=64"):
        build_algorithm(cfg.model)


def test_checkpoint_resume_and_extract_on_fashion_mnist(fmnist_tiny, tmp_path):
    work = tmp_path / "work"
    first = train(TINY, fmnist_tiny, str(work), ["runner.max_epochs=1"])
    assert first["iterations"] == 4  # 64 images / batch 16
    resumed = train(TINY, fmnist_tiny, str(work))  # resumes after epoch 1, runs epoch 2
    assert resumed["iterations"] == 8 and np.isfinite(resumed["final_loss"])
    out = extract(str(work), str(tmp_path / "bb"))
    assert out["algorithm"] == "RotationPred" and out["epoch"] == 2
    state = load_checkpoint(str(work / "epoch_2.pth"))["state_dict"]
    weights = torch.load(out["weights"], weights_only=True)
    assert weights.keys() == {k.removeprefix("backbone.") for k in state if k.startswith("backbone.")}
    assert all(torch.equal(v, state[f"backbone.{k}"]) for k, v in weights.items())


@pytest.mark.parametrize("config", IN1K)
def test_the_seeds_imagenet_recipe_loads_and_builds(config):
    cfg = load_config(config)
    model = build_algorithm(cfg.model)
    assert type(model).__name__ == "RotationPred" and model.head.fc_cls.out_features == 4
    assert cfg.data.train.type == "RotationPredDataset" and cfg.data.samples_per_gpu == 16
    assert cfg.optimizer.lr == 0.2 and cfg.lr_config.step == [30, 50] and cfg.runner.max_epochs == 70
