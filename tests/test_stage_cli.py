import json
import subprocess
import sys

STAGES = ["prep", "pretrain", "extract", "features", "knn", "svm", "low_shot_svm", "linear", "fast_linear", "semi",
          "finetune", "report"]

# Each stage's `python -m` entry point with --help, all in one interpreter: runpy runs the module as
# __main__ exactly as `python -m` does, and the heavy imports are paid once instead of once per stage.
RUN_ALL = """
import contextlib, io, json, runpy, sys
out = {}
for stage in sys.argv[1:]:
    sys.argv = [stage, "--help"]
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            runpy.run_module(f"ssl_lib.stages.{stage}", run_name="__main__", alter_sys=True)
        code = None
    except SystemExit as exit:
        code = exit.code
    out[stage] = [code, buf.getvalue()]
print(json.dumps(out))
"""


def test_every_stage_is_a_command_line_with_help():
    proc = subprocess.run([sys.executable, "-c", RUN_ALL, *STAGES], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.splitlines()[-1])
    for stage in STAGES:
        code, text = results[stage]
        assert code in (0, None), (stage, code)
        assert text.startswith(f"usage: python -m ssl_lib.stages.{stage}") and "--output" in text, stage
