"""The whole pipeline through kfp.local on tiny data, its cache, and the compiled YAML."""
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import TINY_CONFIG

REPO = Path(__file__).resolve().parents[1]


def _run(root: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pipelines.run_local", "--config", TINY_CONFIG, "--train-limit", "64",
           "--test-limit", "40", "--voc-train-limit", "80", "--voc-test-limit", "40", "--voc-mosaic-size", "48",
           "--set", "semi_fractions=[0.2]", "semi_epochs=1", "linear_epochs=1", "low_shot_ks=[1,2]",
           "low_shot_samples=2", "detseg_train_limit=80", "detseg_test_limit=40", "detseg_mosaic_size=48",
           "detection_iters=2", "segmentation_iters=2",
           "--root", str(root)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_pipeline_runs_end_to_end_through_kfp_local_and_second_run_is_cached(tmp_path):
    first = _run(tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "kNN top-1" in first.stdout
    # one progress line per stage on the terminal, the stages' own logs in the file it names
    assert "Executing task" not in first.stdout and "epoch [1]" not in first.stdout
    for stage in ("prep", "pretrain", "extract", "features", "knn", "svm", "low-shot-svm", "linear", "fast-linear",
                  "semi", "finetune", "prep-3", "detection", "segmentation", "report"):
        assert re.search(rf"^  {stage} +success +[\d.]+ s$", first.stdout, re.M), stage
    log = Path(next(line for line in first.stdout.splitlines() if line.startswith("log:")).split()[1])
    assert "Executing task" in log.read_text()
    for row in ("kNN (k=20)", "VOC07 SVM", "low-shot SVM (k=1)", "low-shot SVM (k=2)", "linear (seed protocol)",
                "fast linear (cached)", "semi-supervised 20%", "fine-tuning", "detection (voc0712)", "segmentation (voc12aug)"):
        assert row in first.stdout, row
    report_line = next(line for line in first.stdout.splitlines() if line.startswith("report:"))
    report_md = Path(report_line.split(maxsplit=1)[1])
    metrics = json.loads((report_md.parent / "metrics.json").read_text())
    results = metrics["knn"]["results"]
    assert set(results) == {"pretrained", "random_init", "raw_pixels"}
    assert set(results["pretrained"]["top1"]) == {"10", "20", "100", "200"}
    assert all(0.0 <= v <= 1.0 for v in results["pretrained"]["top1"].values())
    assert metrics["pretrain"]["epochs"] == 2 and metrics["dataset"]["counts"] == {"train": 64, "test": 40}
    md = report_md.read_text()
    assert "| raw pixels |" in md and "| Model | Best Layer | SVM | k=1 | k=2 |" in md
    assert "| Model | Feature1 | Feature2 | Feature3 | Feature4 | Feature5 | AvgPool |" in md
    assert "Top-1 (%)" in md and set(metrics) >= {"knn", "svm", "low_shot_svm", "linear", "fast_linear", "semi",
                                                  "finetune", "detection", "segmentation"}
    # make run's trim: one epoch (of the CNN recipe) on at most 2000 images, here all 64
    assert metrics["finetune"]["epochs"] == 1 and metrics["finetune"]["num_train"] == 64
    assert metrics["finetune"]["config"].endswith("resnet_ft-1xb64-coslr-10e_fmnist.py")
    assert "| Model | Config | mAP | AP50 |" in md and "| Model | Config | mIOU |" in md
    assert metrics["detection"]["iters"] == 2 and set(metrics["detection"]["results"]) == {"pretrained", "random_init"}
    assert metrics["voc_dataset"]["multi_label"] and metrics["voc_dataset"]["counts"] == {"train": 80, "test": 40}
    for plot in ("knn.png", "low_shot.png", "linear.png", "semi.png", "finetune.png"):
        assert (report_md.parent / plot).stat().st_size > 0 and f"({plot})" in md
    assert "<td>raw pixels</td>" in (report_md.parent / "report.html").read_text()
    run_dir = report_md.parents[2]  # <root>/<run>/report/report_dir/report.md
    assert json.loads((run_dir / "prep" / "metrics").read_text())["num_train"] == 64
    assert json.loads((run_dir / "pretrain" / "metrics").read_text())["iterations"] == 8

    second = _run(tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "running" not in second.stdout, "a stage ran again instead of coming from the cache"
    assert re.search(r"^  pretrain +cached$", second.stdout, re.M)


def test_a_failing_stage_is_named_with_its_error_and_the_log(tmp_path):
    cmd = [sys.executable, "-m", "pipelines.run_local", "--config", TINY_CONFIG, "--data", str(tmp_path / "nothing"),
           "--root", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert re.search(r"stage prep failed: DataError: .*nothing", proc.stderr), proc.stderr
    assert "the full log: " in proc.stderr and "Traceback" not in proc.stdout + proc.stderr


def test_compiled_pipeline_loads_back_with_its_stages(tmp_path):
    from kfp import components

    from pipelines.compile import compile_all

    (path,) = [p for p in compile_all(tmp_path) if p.name == "pretrain_and_benchmark.yaml"]
    spec = next(yaml.safe_load_all(path.read_text()))  # the second document is the platform (Kubernetes) spec
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"prep", "prep-2", "prep-3", "pretrain", "extract", "plan-benchmarks", "features", "features-2",
                          "knn", "svm", "low-shot-svm", "linear", "fast-linear", "semi", "finetune", "detection",
                          "segmentation", "report"}
    assert tasks["knn"]["dependentTasks"] == ["features", "plan-benchmarks"]
    assert tasks["features-2"]["inputs"]["artifacts"]["dataset"]["taskOutputArtifact"]["producerTask"] == "prep-2"
    for name in ("svm", "low-shot-svm"):
        assert tasks[name]["inputs"]["artifacts"]["features"]["taskOutputArtifact"]["producerTask"] == "features-2"
    for name in ("detection", "segmentation"):  # the det/seg data, prepared only when one of them runs
        assert tasks[name]["inputs"]["artifacts"]["dataset"]["taskOutputArtifact"]["producerTask"] == "prep-3"
        assert tasks[name]["inputs"]["artifacts"]["backbone"]["taskOutputArtifact"]["producerTask"] == "extract"
    assert tasks["prep-3"]["inputs"]["parameters"]["enabled"]["taskOutputParameter"] == {
        "outputParameterKey": "detseg_data", "producerTask": "plan-benchmarks"}
    loaded = components.load_component_from_file(str(path))
    assert loaded.name == "ssl-pretrain-and-benchmark"
    assert {"source", "config", "train_limit"} <= set(loaded.component_spec.inputs)
