"""The extract stage: the engine's checkpoints, and checkpoints from elsewhere given a config."""
from __future__ import annotations

import json

import pytest
import torch
import torchvision

from conftest import TINY_CONFIG
from ssl_lib.benchmarks.features import load_backbone
from ssl_lib.errors import DataError
from ssl_lib.stages.extract import extract

R18 = ["model.backbone.depth=18", "model.neck.in_channels=512"]
IN1K = "selfsup/mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py"


def test_the_engines_checkpoint_gives_its_backbone_and_a_description(fmnist_tiny, tmp_path):
    from ssl_lib.engine.train import train

    train(TINY_CONFIG, fmnist_tiny, str(tmp_path / "work"), ["runner.max_epochs=1"])
    out = extract(str(tmp_path / "work"), str(tmp_path / "bb"))  # a work dir: its newest epoch
    assert out["algorithm"] == "MoCo" and out["epoch"] == 1
    state = torch.load(tmp_path / "work" / "epoch_1.pth", weights_only=True)["state_dict"]
    model, meta = load_backbone(str(tmp_path / "bb"))
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[f"backbone.{key}"])
    assert meta["backbone"]["base_channels"] == 8 and meta["sha256"] == out["sha256"]


def test_torchvision_weights_load_with_a_config_and_match_torchvision(tmp_path):
    tv = torchvision.models.resnet18()
    torch.save({f"module.{k}": v for k, v in tv.state_dict().items()}, tmp_path / "tv.pth")  # as DDP saves
    out = extract(str(tmp_path / "tv.pth"), str(tmp_path / "bb"), config=IN1K, cfg_options=R18)
    assert out["algorithm"] == "external" and out["epoch"] is None
    model, _ = load_backbone(str(tmp_path / "bb"))
    x = torch.randn(2, 3, 64, 64)
    tv.eval()
    with torch.no_grad():
        ours = model(x)[-1]
        theirs = torch.nn.Sequential(*list(tv.children())[:-2])(x)
    torch.testing.assert_close(ours, theirs)


def test_an_mmselfsup_checkpoint_keeps_only_its_backbone(tmp_path):
    tv = torchvision.models.resnet18()
    state = {f"backbone.{k}": v for k, v in tv.state_dict().items() if not k.startswith("fc.")}
    state["neck.mlp.0.weight"] = torch.zeros(2048, 512)
    torch.save({"meta": {"epoch": 200, "mmcv_version": "1.4.0"}, "state_dict": state}, tmp_path / "mm.pth")
    out = extract(str(tmp_path / "mm.pth"), str(tmp_path / "bb"), config=IN1K, cfg_options=R18)
    assert out["epoch"] == 200
    assert json.loads((tmp_path / "bb" / "backbone.json").read_text())["num_tensors"] == len(state) - 1


def test_a_checkpoint_from_elsewhere_needs_a_config_and_must_fit_it(tmp_path):
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "tv.pth")
    with pytest.raises(DataError, match="was not written by ssl_lib's engine: give --config"):
        extract(str(tmp_path / "tv.pth"), str(tmp_path / "bb"))
    with pytest.raises(DataError, match=r"does not fit backbone ResNet \(depth 50\): \d+ missing keys"):
        extract(str(tmp_path / "tv.pth"), str(tmp_path / "bb"), config=IN1K)
    with pytest.raises(DataError, match=r"does not fit backbone ResNet \(depth 18\): .*size mismatch"):
        extract(str(tmp_path / "tv.pth"), str(tmp_path / "bb"), config=IN1K,
                cfg_options=[*R18, "model.backbone.base_channels=32"])
    assert not (tmp_path / "bb").exists()


def test_a_pickled_object_is_refused_without_running_it(tmp_path):
    torch.save({"state_dict": {}, "hook": torch.nn.Linear(2, 2)}, tmp_path / "evil.pth")
    with pytest.raises(DataError, match="is not a loadable checkpoint \\(weights_only=True\\)"):
        extract(str(tmp_path / "evil.pth"), str(tmp_path / "bb"), config=IN1K)


# kNN alone, on a tiny mosaic for the (skipped) SVM branch
ONLY_KNN = dict(benchmarks=["knn"], voc_train_limit=40, voc_test_limit=40, voc_mosaic_size=48)


def test_the_benchmark_pipeline_evaluates_a_checkpoint_from_elsewhere_through_kfp_local(fmnist_tiny, tmp_path):
    """Bare backbone weights saved by DDP, plus the config they fit, through importer -> extract ->
    kNN -> report on this machine."""
    from kfp import local

    from pipelines.benchmark import benchmark
    from ssl_lib.benchmarks.features import build_backbone

    tiny_backbone = dict(type="ResNet", depth=18, base_channels=8, stem="cifar")
    weights = build_backbone(tiny_backbone, None, seed=3).state_dict()
    torch.save({"state_dict": {f"module.{k}": v for k, v in weights.items()}}, tmp_path / "external.pth")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               enable_caching=False)
    benchmark(dataset_uri=fmnist_tiny, checkpoint_uri=str(tmp_path / "external.pth"),
              checkpoint_config=TINY_CONFIG, knn_ks=[10, 20], **ONLY_KNN)
    (report_md,) = (tmp_path / "root").rglob("report.md")
    metrics = json.loads((report_md.parent / "metrics.json").read_text())
    assert metrics["knn"]["algorithm"] == "external" and metrics["knn"]["num_test"] == 40
    assert set(metrics["knn"]["results"]["pretrained"]["top1"]) == {"10", "20"}


def test_the_benchmark_pipeline_takes_backbone_weights_as_they_are_through_kfp_local(fmnist_tiny, tmp_path):
    from kfp import local

    from pipelines.benchmark import benchmark
    from ssl_lib.benchmarks.features import build_backbone

    weights = build_backbone(dict(type="ResNet", depth=18, base_channels=8, stem="cifar"), None, seed=5).state_dict()
    torch.save(weights, tmp_path / "bare.pth")
    extract(str(tmp_path / "bare.pth"), str(tmp_path / "backbone"), config=TINY_CONFIG)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               enable_caching=False)
    benchmark(dataset_uri=fmnist_tiny, backbone_uri=str(tmp_path / "backbone"), knn_ks=[10], **ONLY_KNN)
    tasks = {p.name for p in (tmp_path / "root").glob("ssl-benchmark-*/*") if p.is_dir()}
    # the from-backbone branch: no extraction; the protocols left out publish a skipped result
    assert {"knn-2", "report-2", "features-3"} <= tasks and "extract" not in tasks
    skipped = json.loads(next((tmp_path / "root").glob("ssl-benchmark-*/svm-2/result/metrics.json")).read_text())
    assert skipped == {"protocol": "svm_voc07", "skipped": True}
    (report_md,) = (tmp_path / "root").rglob("report.md")
    assert "| pretrained backbone |" in report_md.read_text()
