"""A vision transformer through the benchmark stages: extract writes its weights, features gives its CLS
token (avgpool) and the mean of its patch tokens, kNN reads them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ssl_lib.config import load_config
from ssl_lib.errors import ConfigError
from ssl_lib.models import build_algorithm
from ssl_lib.stages.extract import extract
from ssl_lib.stages.features import features
from ssl_lib.stages.knn import knn

TINY_MOCOV3 = str(Path(__file__).parent / "configs" / "mocov3_vit-d32-l2-p4_1xb16-coslr-2e_fmnist.py")


@pytest.fixture(scope="module")
def vit_backbone(tmp_path_factory):
    root = tmp_path_factory.mktemp("vit")
    torch.manual_seed(0)
    model = build_algorithm(load_config(TINY_MOCOV3).model)
    torch.save({"state_dict": model.state_dict()}, root / "model.pth")
    extract(str(root / "model.pth"), str(root / "backbone"), config=TINY_MOCOV3)
    return str(root / "backbone"), model


def test_features_of_a_vit_are_its_cls_token_and_patch_mean_and_knn_reads_them(fmnist_tiny, vit_backbone, tmp_path):
    backbone, model = vit_backbone
    out = features(fmnist_tiny, backbone, str(tmp_path / "feats"), baselines=True, batch_size=16)
    assert out["layers"] == ["avgpool", "patch_mean"]
    x = np.load(tmp_path / "feats" / "test.pretrained.avgpool.npy")
    patch_mean = np.load(tmp_path / "feats" / "test.pretrained.patch_mean.npy")
    assert x.shape == patch_mean.shape == (40, 32)
    # the same numbers as the algorithm's own backbone gives: its last block's CLS token and patch mean
    from ssl_lib.benchmarks.features import eval_dataset, load_backbone_meta

    ds = eval_dataset(fmnist_tiny, "test", load_backbone_meta(backbone)["eval_pipeline"])  # the config's: 32 px
    img = torch.stack([ds[i]["img"] for i in range(3)])
    vit = model.base_encoder[0] if hasattr(model, "base_encoder") else model.backbone
    vit.eval()
    with torch.no_grad():
        patches, cls = vit(img)[-1]
    np.testing.assert_allclose(x[:3], cls.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(patch_mean[:3], patches.mean(dim=(2, 3)).numpy(), rtol=1e-5, atol=1e-5)
    result = knn(str(tmp_path / "feats"), str(tmp_path / "knn"), ks=[5])
    assert set(result["results"]) == {"pretrained", "random_init", "raw_pixels"}
    with pytest.raises(ConfigError, match="VisionTransformer backbone must be among"):
        features(fmnist_tiny, backbone, str(tmp_path / "f2"), layers=["feat5"])


def test_the_linear_protocol_trains_heads_on_a_vits_cls_token_and_patch_mean(fmnist_tiny, vit_backbone, tmp_path):
    from ssl_lib.benchmarks.linear import TokenClsHeads
    from ssl_lib.stages.linear import linear

    backbone, model = vit_backbone
    out = linear(fmnist_tiny, backbone, str(tmp_path / "linear"), epochs=1,
                 cfg_options=["data.samples_per_gpu=16", "data.train_limit=0"])
    assert set(out["heads"]) == {"avgpool", "patch_mean"} and out["dims"] == {"avgpool": 32, "patch_mean": 32}
    state = torch.load(tmp_path / "linear" / "heads.pth", weights_only=True)
    assert state["fcs.avgpool.weight"].shape == (10, 32) and "norms.patch_mean.running_mean" in state
    # each head reads its own input: the CLS token and the patch mean of the backbone's last block
    head = TokenClsHeads(32, 10, ("avgpool", "patch_mean")).eval()
    patches, cls = torch.randn(2, 32, 2, 2), torch.randn(2, 32)
    logits = head(([patches, cls],))
    torch.testing.assert_close(logits["avgpool"], head.fcs["avgpool"](head.norms["avgpool"](cls)))
    torch.testing.assert_close(logits["patch_mean"],
                               head.fcs["patch_mean"](head.norms["patch_mean"](patches.mean(dim=(2, 3)))))
