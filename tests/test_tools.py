"""The seed's tools: count_parameters, publish_model, print_config."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import torch

from conftest import TINY_CONFIG

REPO = Path(__file__).resolve().parents[1]
IN1K = "selfsup/mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py"


def _tool(*args):
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_count_parameters_of_the_seeds_mocov2_resnet50():
    from ssl_lib.config import load_config
    from ssl_lib.model_tools import count_parameters

    counts = count_parameters(load_config(IN1K))
    # ResNet-50 without its classifier has 23,508,032 parameters; MoCo keeps a momentum copy of it
    assert counts["backbone"] == 23_508_032
    assert counts["total"] == 2 * (counts["backbone"] + counts["neck"]) + counts.get("head", 0)
    assert counts["trainable"] == counts["backbone"] + counts["neck"] + counts.get("head", 0)
    out = _tool("tools/analysis_tools/count_parameters.py", IN1K)
    assert out.returncode == 0 and "backbone      23,508,032  (23.51 M)" in out.stdout


def test_publish_model_drops_the_training_state_and_names_the_file_by_its_hash(fmnist_tiny, tmp_path):
    from ssl_lib.engine.train import train

    train(TINY_CONFIG, fmnist_tiny, str(tmp_path / "work"), ["runner.max_epochs=1"])
    out = _tool("tools/model_converters/publish_model.py", str(tmp_path / "work" / "epoch_1.pth"),
                str(tmp_path / "mocov2_tiny.pth"))
    assert out.returncode == 0, out.stderr
    published = Path(out.stdout.strip())
    digest = hashlib.sha256(published.read_bytes()).hexdigest()
    assert published.name == f"mocov2_tiny-{digest[:8]}.pth"
    state = torch.load(published, weights_only=True)
    assert set(state) == {"meta", "state_dict"} and state["meta"]["epoch"] == 1
    bad = _tool("tools/model_converters/publish_model.py", str(tmp_path / "missing.pth"), str(tmp_path / "x.pth"))
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")


def test_print_config_resolves_the_base_chain_and_overrides():
    out = _tool("tools/misc/print_config.py", IN1K, "--cfg-options", "runner.max_epochs=3")
    assert out.returncode == 0 and "type='MoCo'" in out.stdout and "max_epochs=3" in out.stdout
    bad = _tool("tools/misc/print_config.py", IN1K, "--cfg-options", "runner.max_epochs=[1,")
    assert bad.returncode == 2 and "malformed --cfg-options" in bad.stderr
