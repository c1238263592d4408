"""The stages on object storage that fails: the local pipeline's stages (prep, pretrain, extract,
features, knn, report) read and write `s3://` through the fault-injecting proxy, and at 5% faults
give what a fault-free run gives, byte for byte; at 100% each stage gives up with one error line."""
from __future__ import annotations

import collections
import json
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from conftest import S3_FAULT_BUDGET, TINY_CONFIG
from ssl_lib import storage
from ssl_lib.stages import extract, features, knn, prep, pretrain, report

REPO = Path(__file__).resolve().parents[1]
# what a run measures of its own duration: the one part of its metrics that cannot repeat
TIMINGS = {"seconds", "images_per_second"}
DURATION = re.compile(r"[\d.]+ s\.")
TIMEOUT = float(S3_FAULT_BUDGET["SSL_S3_TIMEOUT_SECONDS"])


def _run_pipeline(root: str) -> None:
    """The local pipeline's stages, in order, every input and output under `root`."""
    at = {name: storage.join(root, name) for name in ("dataset", "pretrain", "backbone", "features", "knn", "report")}
    # the same start for the global generators: a training checkpoint keeps their states
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    prep.prep("fashion-mnist", at["dataset"], train_limit=16, test_limit=16)  # one batch: two iterations in all
    pretrain.pretrain(TINY_CONFIG, at["dataset"], at["pretrain"], work_dir=storage.join(root, "work"))
    extract.extract(at["pretrain"], at["backbone"])
    features.features(at["dataset"], at["backbone"], at["features"])
    knn.knn(at["features"], at["knn"], ks=[5, 10])
    report.report(at["report"], knn=at["knn"], pretrain=at["pretrain"], dataset=at["dataset"])


def _objects(root: str) -> dict[str, bytes]:
    return {name: storage.read_bytes(storage.join(root, name)) for name in storage.listdir(root)}


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def test_the_pipeline_on_s3_at_5_percent_faults_gives_what_a_fault_free_run_gives(s3_faults, tmp_path, monkeypatch,
                                                                                  capsys):
    root = f"s3://{s3_faults.bucket}/nightly"
    # a shard cache each, so that the second run reads every shard from object storage too
    monkeypatch.setenv("SSL_DATA_CACHE", str(tmp_path / "cache-clean"))
    tic = time.monotonic()
    _run_pipeline(root)
    clean_seconds = time.monotonic() - tic
    clean_requests = s3_faults.stats.requests
    clean = _objects(root)
    for name in clean:
        storage.remove(storage.join(root, name))

    monkeypatch.setenv("SSL_DATA_CACHE", str(tmp_path / "cache-faulty"))
    s3_faults.reset(rate=0.05, seed=7)
    before, tic = collections.Counter(storage.STATS), time.monotonic()
    _run_pipeline(root)
    faulty_seconds = time.monotonic() - tic
    ours = collections.Counter(storage.STATS) - before
    requests, faults, log = s3_faults.stats.requests, dict(s3_faults.stats.faults), list(s3_faults.log)
    s3_faults.set_rate(0.0)
    faulty = _objects(root)

    # the same objects (TensorBoard names its event files by the time and host they were written at)
    assert [n for n in sorted(faulty) if ".tfevents." not in n] == [n for n in sorted(clean) if ".tfevents." not in n]
    # every stage wrote to object storage, and published its artifact whole
    for artifact in ("pretrain", "backbone", "features", "knn", "report"):
        assert f"{artifact}/_SUCCESS" in faulty, artifact
    exact = [name for name in clean if name.startswith(("dataset/", "backbone/", "features/"))
             or name.endswith((".pth", ".py", ".png", "_SUCCESS"))]
    assert {"dataset/manifest.json", "pretrain/checkpoint.pth", "backbone/backbone.pth", "work/epoch_2.pth"} <= \
        set(exact)  # what is left: train.log (its lines are timed), metrics and report (below)
    assert [name for name in exact if faulty[name] != clean[name]] == []
    for name in [n for n in clean if n.endswith("metrics.json")]:
        assert _without_timings(json.loads(faulty[name])) == _without_timings(json.loads(clean[name])), name
    for name in ("report/report.md", "report/report.html"):  # the same page, but for how long pretraining took
        assert DURATION.sub("", faulty[name].decode()) == DURATION.sub("", clean[name].decode())
    boto3_faults = sum(1 for r in log if r.fault and r.user_agent.startswith("Boto3"))
    assert sum(faults.values()) >= 5 and ours["retries"] == boto3_faults and ours["gave_up"] == 0
    with capsys.disabled():
        print(f"\npipeline on s3: fault-free {clean_requests} requests, {clean_seconds:.1f} s; at 5%: {requests} "
              f"requests, faults {faults}, boto3 retries {ours['retries']}, pyarrow requests "
              f"{sum(1 for r in log if not r.user_agent.startswith('Boto3'))} (faulted "
              f"{sum(1 for r in log if r.fault and not r.user_agent.startswith('Boto3'))}), {faulty_seconds:.1f} s")


STAGES = {  # each stage's command line, its inputs where a pipeline would have put them
    "prep": (prep, ["--source", "fashion-mnist", "--output", "{root}/dataset", "--train-limit", "16"]),
    "pretrain": (pretrain, ["--config", TINY_CONFIG, "--dataset", "{root}/dataset", "--output", "{root}/pretrain",
                            "--work-dir", "{root}/work"]),
    "extract": (extract, ["--checkpoint", "{root}/pretrain", "--output", "{root}/backbone"]),
    "features": (features, ["--dataset", "{root}/dataset", "--backbone", "{root}/backbone", "--output",
                            "{root}/features"]),
    "knn": (knn, ["--features", "{root}/features", "--output", "{root}/knn"]),
    "report": (report, ["--output", "{root}/report", "--knn", "{root}/knn", "--dataset", "{root}/dataset"]),
}


def test_at_100_percent_faults_each_stage_fails_within_its_budget_with_one_error_line(s3_faults, monkeypatch,
                                                                                       capsys):
    root = f"s3://{s3_faults.bucket}/hopeless-stages"
    attempts, seconds = 3, 1.0
    monkeypatch.setenv("SSL_S3_MAX_ATTEMPTS", str(attempts))
    monkeypatch.setenv("SSL_S3_RETRY_SECONDS", str(seconds))
    s3_faults.reset(rate=1.0, seed=7)
    took = {}
    for name, (module, argv) in STAGES.items():
        capsys.readouterr()
        tic = time.monotonic()
        assert module.run_cli(module.build_parser(), getattr(module, name), [a.format(root=root) for a in argv]) == 2
        took[name] = time.monotonic() - tic
        out, err = capsys.readouterr()
        assert out == "" and len(err.strip().splitlines()) == 1, err
        assert err.startswith("error: cannot ") and f" {root}/" in err and "gave up after" in err, err
        # the first request's budget, then maybe one more request's on the way out (a lock released)
        assert took[name] < 2 * (seconds + TIMEOUT + 0.5), (name, took[name])
    # the command line itself, in its own process: exit 2 and the one line
    argv = [a.format(root=root) for a in STAGES["knn"][1]]
    proc = subprocess.run([sys.executable, "-m", "ssl_lib.stages.knn", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [proc.stderr.strip()], proc.stderr
    assert proc.stderr.startswith("error: cannot ") and "gave up after" in proc.stderr
    requests, faults = s3_faults.stats.requests, dict(s3_faults.stats.faults)
    s3_faults.set_rate(0.0)
    assert storage.listdir(root) == []  # nothing written: no output, no lock left behind
    with capsys.disabled():
        print(f"\nstages at 100% faults: {requests} requests, faults {faults}; seconds to fail: "
              + ", ".join(f"{k} {v:.1f}" for k, v in took.items()))
