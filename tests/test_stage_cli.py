import subprocess
import sys

import pytest


@pytest.mark.parametrize("stage", ["prep", "pretrain", "extract", "features", "knn", "svm", "low_shot_svm", "linear",
                                   "fast_linear", "semi", "finetune", "report"])
def test_every_stage_is_a_command_line_with_help(stage):
    proc = subprocess.run([sys.executable, "-m", f"ssl_lib.stages.{stage}", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: python -m ssl_lib.stages.{stage}") and "--output" in proc.stdout
