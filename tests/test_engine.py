import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import TINY_CONFIG
from ssl_lib.engine import checkpoint
from ssl_lib.engine.schedules import lr_at
from ssl_lib.engine.train import train

REPO = Path(__file__).resolve().parents[1]


def _env(**extra):
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), **extra)


def test_cosine_lr_goes_from_base_to_min_with_linear_warmup():
    cfg = dict(policy="CosineAnnealing", min_lr=0.0, by_epoch=False, warmup="linear", warmup_iters=10,
               warmup_ratio=0.1)
    assert lr_at(cfg, 1.0, 0, 0, 100, 2) == pytest.approx(0.1)
    assert lr_at(cfg, 1.0, 0, 10, 100, 2) == pytest.approx((1 + math.cos(math.pi * 10 / 200)) / 2)
    assert lr_at(cfg, 1.0, 1, 99, 100, 2) < 1e-3


@pytest.mark.parametrize("it", [0, 1, 3, 5, 9, 10, 50])
def test_linear_warmup_rises_linearly_from_the_ratio_to_the_schedule(it):
    cfg = dict(policy="CosineAnnealing", min_lr=0.0, by_epoch=False, warmup="linear", warmup_iters=10,
               warmup_ratio=0.1)
    cosine = (1 + math.cos(math.pi * it / 100)) / 2
    factor = 1 - (1 - it / 10) * (1 - 0.1) if it < 10 else 1.0
    assert lr_at(cfg, 2.0, 0, it, 100, 1) == pytest.approx(2.0 * cosine * factor, rel=1e-12)


@pytest.mark.parametrize("it, expected", [(0, 0.25), (4, 0.25), (5, 2.0), (6, 2.0)])
def test_constant_warmup_holds_the_ratio_then_releases_it(it, expected):
    cfg = dict(policy="Fixed", warmup="constant", warmup_iters=5, warmup_ratio=0.125)
    assert lr_at(cfg, 2.0, 0, it, 100, 1) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("epoch, expected", [(0, 1.0), (5, 0.55), (10, 0.1), (8, 0.1 + 0.9 * (1 + math.cos(0.8 * math.pi)) / 2)])
def test_cosine_min_lr_ratio_sets_the_floor_relative_to_the_base_lr(epoch, expected):
    cfg = dict(policy="CosineAnnealing", min_lr_ratio=0.1)
    assert lr_at(cfg, 1.0, epoch, 0, 10, 10) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("cfg, epoch, expected", [
    (dict(policy="StepFixCosineAnnealing", min_lr=0.0), 5, 0.5),  # half-way down the cosine
    (dict(policy="Step", step=[3, 8], gamma=0.1), 8, 0.01),
    (dict(policy="Poly", power=2.0, min_lr=0.0), 5, 0.25),
    (dict(policy="Exp", gamma=0.5), 3, 0.125),
    (dict(policy="Fixed", warmup="exp", warmup_iters=2, warmup_ratio=0.01, warmup_by_epoch=True), 1, 0.1),
])
def test_the_seeds_lr_policies_by_epoch(cfg, epoch, expected):
    assert lr_at(cfg, 1.0, epoch, 0, 10, 10) == pytest.approx(expected)


def test_an_unknown_lr_policy_names_the_known_ones():
    from ssl_lib.errors import ConfigError

    with pytest.raises(ConfigError, match="'OneCycle' is not supported; use one of CosineAnnealing, "
                                          "StepFixCosineAnnealing, Step, Poly, Exp, Fixed"):
        lr_at(dict(policy="OneCycle"), 1.0, 0, 0, 10, 10)


def test_checkpoint_holds_whole_state_and_loads_with_weights_only(fmnist_tiny, tmp_path):
    metrics = train(TINY_CONFIG, fmnist_tiny, str(tmp_path), ["runner.max_epochs=1"])
    assert metrics["iterations"] == 4  # 64 images / batch 16
    state = torch.load(tmp_path / "epoch_1.pth", weights_only=True)
    assert set(state) == {"meta", "state_dict", "optimizer", "scaler", "rng", "hooks"}
    assert state["meta"]["epoch"] == 1 and state["meta"]["algorithm"] == "MoCo"
    assert "queue" in state["state_dict"] and state["optimizer"]["state"]
    assert checkpoint.newest(str(tmp_path)).endswith("epoch_1.pth")


def test_resume_after_kill_continues_from_checkpoint_and_matches_uninterrupted_run(fmnist_tiny, tmp_path):
    def cmd(work_dir):
        return [sys.executable, "-m", "ssl_lib.engine.train", "--config", TINY_CONFIG, "--dataset", fmnist_tiny,
                "--work-dir", str(work_dir), "--cfg-options", "runner.max_epochs=3"]

    # Both runs in subprocesses with the same thread count: results are bitwise equal only then.
    ref_dir = tmp_path / "uninterrupted"
    subprocess.run(cmd(ref_dir), env=_env(), check=True, capture_output=True, timeout=300)

    work = tmp_path / "killed"
    proc = subprocess.Popen(cmd(work), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (work / "epoch_1.pth").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = checkpoint.list_epochs(str(work))
    assert done and done[-1] < 3, f"the run was not interrupted mid-way (checkpoints: {done})"

    rerun = subprocess.run(cmd(work), env=_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    resumed = re.search(r"resumed from \S+epoch_(\d+)\.pth \(epoch (\d+)", rerun.stdout)
    assert resumed and int(resumed.group(2)) == done[-1]
    assert f"epoch [{done[-1]}][1/" not in rerun.stdout  # no epoch before the checkpoint ran again

    ref = torch.load(ref_dir / "epoch_3.pth", weights_only=True)["state_dict"]
    got = torch.load(work / "epoch_3.pth", weights_only=True)["state_dict"]
    for key in ref:
        assert torch.equal(ref[key], got[key]), f"{key} differs from the uninterrupted run"


def test_two_process_torchrun_gloo_trains_and_writes_one_checkpoint(fmnist_tiny, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "ssl_lib.engine.train", "--config", TINY_CONFIG, "--dataset", fmnist_tiny,
           "--work-dir", str(tmp_path), "--cfg-options", "runner.max_epochs=1",
           "model.backbone.norm_cfg={'_delete_':True,'type':'SyncBN'}"]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es) x batch 16" in proc.stdout
    state = torch.load(tmp_path / "epoch_1.pth", weights_only=True)
    assert state["meta"]["world_size"] == 2
    assert state["meta"]["iter"] == 2  # 64 images / (2 processes x batch 16)


def test_two_process_resume_restores_each_ranks_random_state_and_matches_uninterrupted_run(fmnist_tiny, tmp_path):
    def torchrun(work_dir, *options):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "ssl_lib.engine.train", "--config", TINY_CONFIG, "--dataset", fmnist_tiny,
               "--work-dir", str(work_dir), "--cfg-options", "runner.max_epochs=2", *options]
        proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    torchrun(tmp_path / "whole")
    first = torch.load(tmp_path / "whole" / "epoch_1.pth", weights_only=True)
    assert len(first["rng"]) == 2  # one entry per rank, and the ranks' streams differ
    assert not torch.equal(first["rng"][0]["torch"], first["rng"][1]["torch"])

    rerun = torchrun(tmp_path / "resumed", f"resume_from={tmp_path / 'whole' / 'epoch_1.pth'}")
    assert "resumed from" in rerun.stdout and "epoch [1][1/" not in rerun.stdout
    ref = torch.load(tmp_path / "whole" / "epoch_2.pth", weights_only=True)["state_dict"]
    got = torch.load(tmp_path / "resumed" / "epoch_2.pth", weights_only=True)["state_dict"]
    for key in ref:
        assert torch.equal(ref[key], got[key]), f"{key} differs from the uninterrupted 2-process run"

    # A checkpoint of another world size (a resized job) resumes with fresh per-rank generators.
    train(TINY_CONFIG, fmnist_tiny, str(tmp_path / "one"), ["runner.max_epochs=2", "checkpoint_config.interval=1"])
    resized = torchrun(tmp_path / "resized", f"resume_from={tmp_path / 'one' / 'epoch_1.pth'}")
    assert "written by 1 process(es), this run has 2: random generators reseeded" in resized.stdout
    assert torch.load(tmp_path / "resized" / "epoch_2.pth", weights_only=True)["meta"]["world_size"] == 2


def test_unknown_type_in_config_is_one_error_line_and_exit_2(fmnist_tiny, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ssl_lib.stages.pretrain", "--config", TINY_CONFIG, "--dataset", fmnist_tiny,
         "--output", str(tmp_path / "out"), "--work-dir", str(tmp_path / "work"),
         "--cfg-options", "model.neck.type=NoSuchNeck"],
        env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: model.neck.type = 'NoSuchNeck': not a registered neck")
    assert not (tmp_path / "out").exists()


def test_missing_dataset_is_one_error_line_and_exit_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ssl_lib.stages.pretrain", "--config", TINY_CONFIG,
         "--dataset", str(tmp_path / "nope"), "--output", str(tmp_path / "out")],
        env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: prepared dataset not found: {tmp_path / 'nope' / 'manifest.json'} " \
                                  "(run the prep stage first)"


def test_pretrain_stage_with_nproc_2_runs_torchrun_and_publishes_the_checkpoint(fmnist_tiny, tmp_path):
    from ssl_lib.stages.pretrain import pretrain

    metrics = pretrain(TINY_CONFIG, fmnist_tiny, str(tmp_path / "out"), ["runner.max_epochs=1"],
                       work_dir=str(tmp_path / "work"), nproc=2)
    assert metrics["world_size"] == 2 and metrics["iterations"] == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "_SUCCESS", "checkpoint.pth", "config.py", "metrics.json", "train.log"]
    assert torch.load(tmp_path / "out" / "checkpoint.pth", weights_only=True)["meta"]["world_size"] == 2


def test_pytorchjob_launcher_hands_replicas_object_storage_uris_and_publishes_their_checkpoint(
        s3_server, fmnist_tiny, tmp_path, monkeypatch):
    """The replica (played here by the training entry point in this process) sees only s3:// URIs:
    the resolved config, the dataset and the work dir; the stage then publishes its final checkpoint."""
    import ssl_lib.engine.pytorchjob as pytorchjob
    from ssl_lib import storage
    from ssl_lib.engine.train import main as replica_main
    from ssl_lib.stages.pretrain import pretrain

    dataset = f"s3://{s3_server}/pytorchjob/dataset"
    for name in storage.listdir(fmnist_tiny):
        storage.upload(Path(fmnist_tiny) / name, storage.join(dataset, name))
    jobs = []

    def fake_run_pytorchjob(*, name, command, **kwargs):
        jobs.append(dict(name=name, command=command, **kwargs))
        assert command[:3] == ["python", "-m", "ssl_lib.engine.train"]
        assert replica_main(command[3:]) == 0

    monkeypatch.setattr(pytorchjob, "run_pytorchjob", fake_run_pytorchjob)
    work_dir = f"s3://{s3_server}/pytorchjob/work"
    metrics = pretrain(TINY_CONFIG, dataset, str(tmp_path / "out"), ["runner.max_epochs=1"], work_dir=work_dir,
                       launcher="pytorchjob", image="registry.invalid/ssl-lib-cuda:test", num_workers=2)
    (job,) = jobs
    args = dict(zip(job["command"][3::2], job["command"][4::2]))
    assert args == {"--config": f"{work_dir}/config.py", "--dataset": dataset, "--work-dir": work_dir}
    assert job["num_workers"] == 2 and job["name"].startswith("pretrain-")
    assert metrics["iterations"] == 4 and storage.exists(f"{work_dir}/epoch_1.pth")
    assert torch.load(tmp_path / "out" / "checkpoint.pth", weights_only=True)["meta"]["epoch"] == 1


def test_deterministic_turns_cudnn_autotuning_off_and_deterministic_kernels_on(fmnist_tiny, tmp_path):
    try:
        train(TINY_CONFIG, fmnist_tiny, str(tmp_path), ["runner.max_epochs=1", "cudnn_benchmark=True"],
              deterministic=True)
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        train(TINY_CONFIG, fmnist_tiny, str(tmp_path / "fast"), ["runner.max_epochs=1", "cudnn_benchmark=True"])
        assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
    finally:
        torch.backends.cudnn.deterministic = torch.backends.cudnn.benchmark = False
