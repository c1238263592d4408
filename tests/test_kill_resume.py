"""SIGKILL at seeded moments: training resumes bit-identical, prep resumes to the same bytes, and the
benchmark stages publish complete outputs or nothing."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from conftest import TINY_CONFIG
from ssl_lib import storage
from ssl_lib.engine import checkpoint

REPO = Path(__file__).resolve().parents[1]
ITER_RUNNER = ["runner={'_delete_':True,'type':'IterBasedRunner','max_iters':24}", "checkpoint_config.interval=1",
               "checkpoint_config.max_keep_ckpts=0", "lr_config.by_epoch=False"]


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))


def _torchrun(work_dir: Path, dataset: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            "-m", "ssl_lib.engine.train", "--config", TINY_CONFIG, "--dataset", dataset,
            "--work-dir", str(work_dir), "--cfg-options", *ITER_RUNNER]


def _descendants(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(c) for child in children for c in [child, *map(str, _descendants(int(child)))]]


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process and every descendant at once, as a preempted pod: torchrun starts its ranks
    in sessions of their own, so killing its process group alone would leave them training."""
    for pid in [proc.pid, *_descendants(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def _newest_iter(work_dir: Path) -> int:
    done = [int(p.stem.split("_")[1]) for p in work_dir.glob("iter_*.pth")]
    return max(done, default=0)


def test_two_process_training_killed_at_ten_random_moments_ends_bit_identical(fmnist_tiny, tmp_path):
    ref_dir = tmp_path / "uninterrupted"
    proc = subprocess.run(_torchrun(ref_dir, fmnist_tiny), env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    rng = random.Random(10)
    # kill once iteration k is saved, a random fraction of an iteration later: k and the delay seeded
    moments = sorted(rng.sample(range(1, 21), 10))
    work = tmp_path / "killed"
    resumed_from = []
    for k in moments:
        proc = subprocess.Popen(_torchrun(work, fmnist_tiny), env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        deadline = time.monotonic() + 240
        while _newest_iter(work) < k and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.01))
        if proc.poll() is None:
            _kill_group(proc)
        out = proc.stdout.read()
        found = [line for line in out.splitlines() if "resumed from" in line]
        resumed_from.append(found[0] if found else "")
        assert _newest_iter(work) < 24, f"the run at moment {k} was not interrupted"
    # every run after the first resumed from the newest checkpoint it found
    assert all("resumed from" in line for line in resumed_from[1:]), resumed_from
    final = subprocess.run(_torchrun(work, fmnist_tiny), env=_env(), capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-3000:]
    assert "resumed from" in final.stdout

    ref = torch.load(ref_dir / "iter_24.pth", weights_only=True)
    got = torch.load(work / "iter_24.pth", weights_only=True)
    for key, value in ref["state_dict"].items():
        assert torch.equal(value, got["state_dict"][key]), f"{key} differs from the uninterrupted run"
    for a, b in zip(ref["optimizer"]["state"].values(), got["optimizer"]["state"].values()):
        assert all(torch.equal(a[n], b[n]) for n in a)
    assert got["meta"]["iter"] == ref["meta"]["iter"] == 24


def test_prep_killed_mid_shard_resumes_to_byte_identical_shards(tmp_path):
    def cmd(out):
        return [sys.executable, "-m", "ssl_lib.stages.prep", "--source", "fashion-mnist", "--output", str(out),
                "--train-limit", "1200", "--test-limit", "300", "--shard-size", "100"]

    ref = tmp_path / "uninterrupted"
    subprocess.run(cmd(ref), env=_env(), check=True, capture_output=True, timeout=300)
    out = tmp_path / "killed"
    rng = random.Random(3)
    for _ in range(2):
        proc = subprocess.Popen(cmd(out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        want = len(list((out / "shards").glob("*.parquet"))) + rng.randint(2, 4) if out.exists() else rng.randint(2, 4)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and \
                len(list((out / "shards").glob("*.parquet"))) < want:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.05))  # somewhere inside the next shard
        assert proc.poll() is None, "prep finished before it was killed"
        _kill_group(proc)
        assert not storage.is_complete(str(out)) and not (out / "manifest.json").exists()
    rerun = subprocess.run(cmd(out), env=_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resum" in rerun.stdout + rerun.stderr
    names = sorted(p.relative_to(ref).as_posix() for p in ref.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    for name in names:
        assert (ref / name).read_bytes() == (out / name).read_bytes(), name


def _kill_and_rerun(cmd: list[str], out: Path, rng: random.Random) -> None:
    """Kill `cmd` at three moments: when its staging folder appears beside `out`, when `out` appears,
    and at a seeded moment of its run. Its output must be absent or complete, never partial; then
    it runs again to completion."""
    start = time.monotonic()
    subprocess.run(cmd, env=_env(), check=True, capture_output=True, timeout=300)
    whole = time.monotonic() - start
    killed = []
    for moment in ("staging", "output", rng.uniform(0.3, 1.0)):
        # A stage's staging folder can live for less than a poll: up to 3 tries to catch the moment.
        for _ in range(3 if isinstance(moment, str) else 1):
            if out.exists():
                subprocess.run(["rm", "-rf", str(out)], check=True)
            proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
            if moment in ("staging", "output"):  # its staging folder, or the output itself, just appeared
                def appeared():
                    if moment == "output":
                        return out.exists()
                    return any(p.name.startswith(f".{out.name}.staging") for p in out.parent.iterdir())

                deadline = time.monotonic() + 120
                while proc.poll() is None and time.monotonic() < deadline and not appeared():
                    time.sleep(0.0005)
                time.sleep(rng.uniform(0.0, 0.002))
            else:
                time.sleep(whole * moment)
            running = proc.poll() is None
            if running:
                _kill_group(proc)
            assert not out.exists() or storage.is_complete(str(out)), f"{out} is visible but incomplete ({moment})"
            if running:
                killed.append(moment)
                break
    assert killed, f"{cmd[2]} finished before every kill: the test interrupted nothing"
    rerun = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert storage.is_complete(str(out))


def test_extract_knn_and_report_killed_publish_complete_outputs_only(fmnist_tiny, tiny_backbone, tmp_path):
    rng = random.Random(5)
    ckpt = tmp_path / "model.pth"
    torch.manual_seed(0)
    from ssl_lib.config import load_config
    from ssl_lib.models import build_algorithm

    torch.save({"state_dict": build_algorithm(load_config(TINY_CONFIG).model).state_dict()}, ckpt)
    stage = [sys.executable, "-m"]
    backbone = tmp_path / "backbone"
    _kill_and_rerun(stage + ["ssl_lib.stages.extract", "--checkpoint", str(ckpt), "--output", str(backbone),
                             "--config", TINY_CONFIG], backbone, rng)
    feats = tmp_path / "features"
    subprocess.run(stage + ["ssl_lib.stages.features", "--dataset", fmnist_tiny, "--backbone", str(backbone),
                            "--output", str(feats), "--layers", "avgpool"], env=_env(), check=True,
                   capture_output=True, timeout=300)
    knn = tmp_path / "knn"
    _kill_and_rerun(stage + ["ssl_lib.stages.knn", "--features", str(feats), "--output", str(knn)], knn, rng)
    report = tmp_path / "report"
    _kill_and_rerun(stage + ["ssl_lib.stages.report", "--output", str(report), "--knn", str(knn)], report, rng)
    assert json.loads((knn / "metrics.json").read_text())
    assert (report / "report.md").exists()


def test_pretrain_twice_on_one_work_dir_trains_nothing_the_second_time(fmnist_tiny, tmp_path):
    from ssl_lib.stages.pretrain import pretrain

    work = tmp_path / "work"
    pretrain(TINY_CONFIG, fmnist_tiny, str(tmp_path / "out1"), ["runner.max_epochs=1"], work_dir=str(work))
    before = {p.name: p.stat().st_mtime_ns for p in work.iterdir()}
    out = pretrain(TINY_CONFIG, fmnist_tiny, str(tmp_path / "out2"), ["runner.max_epochs=1"], work_dir=str(work))
    assert {p.name: p.stat().st_mtime_ns for p in work.iterdir()} == before  # nothing written again
    assert (tmp_path / "out2" / "checkpoint.pth").read_bytes() == (tmp_path / "out1" / "checkpoint.pth").read_bytes()
    assert out["iterations"] == 4  # 64 images / batch 16, from the first run's metrics


def test_max_keep_ckpts_keeps_exactly_that_many(fmnist_tiny, tmp_path):
    from ssl_lib.engine.train import train

    train(TINY_CONFIG, fmnist_tiny, str(tmp_path), ["runner.max_epochs=5", "checkpoint_config.interval=1",
                                                     "checkpoint_config.max_keep_ckpts=2"])
    assert checkpoint.list_epochs(str(tmp_path)) == [4, 5]
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["epoch_4.pth", "epoch_5.pth"]
