"""The whole pipeline through kfp.local on tiny data, its cache, and the compiled YAML."""
import json
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import TINY_CONFIG

REPO = Path(__file__).resolve().parents[1]


def _run(root: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pipelines.run_local", "--config", TINY_CONFIG, "--train-limit", "64",
           "--test-limit", "40", "--root", str(root)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_pipeline_runs_end_to_end_through_kfp_local_and_second_run_is_cached(tmp_path):
    first = _run(tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "kNN top-1" in first.stdout
    report_line = next(line for line in first.stdout.splitlines() if line.startswith("report:"))
    report_md = Path(report_line.split(maxsplit=1)[1])
    metrics = json.loads((report_md.parent / "metrics.json").read_text())
    results = metrics["knn"]["results"]
    assert set(results) == {"pretrained", "random_init", "raw_pixels"}
    assert set(results["pretrained"]["top1"]) == {"10", "20", "100", "200"}
    assert all(0.0 <= v <= 1.0 for v in results["pretrained"]["top1"].values())
    assert metrics["pretrain"]["epochs"] == 2 and metrics["dataset"]["counts"] == {"train": 64, "test": 40}
    assert "| raw pixels |" in report_md.read_text()
    assert "<td>raw pixels</td>" in (report_md.parent / "report.html").read_text()
    run_dir = report_md.parents[2]  # <root>/<run>/report/report_dir/report.md
    assert json.loads((run_dir / "prep" / "metrics").read_text())["num_train"] == 64
    assert json.loads((run_dir / "pretrain" / "metrics").read_text())["iterations"] == 8

    second = _run(tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    log = second.stdout + second.stderr
    assert "Executing task" not in log, "a stage ran again instead of coming from the cache"
    assert "epoch [1]" not in log  # nothing retrained


def test_compiled_pipeline_loads_back_with_its_five_stages(tmp_path):
    from kfp import components

    from pipelines.compile import compile_all

    (path,) = [p for p in compile_all(tmp_path) if p.name == "pretrain_and_benchmark.yaml"]
    spec = next(yaml.safe_load_all(path.read_text()))  # the second document is the platform (Kubernetes) spec
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"prep", "pretrain", "extract", "knn", "report"}
    assert tasks["knn"]["dependentTasks"] == ["extract", "prep"]
    loaded = components.load_component_from_file(str(path))
    assert loaded.name == "ssl-pretrain-and-benchmark"
    assert {"source", "config", "train_limit"} <= set(loaded.component_spec.inputs)
