"""One writer per output: the lock a stage holds beside its output, locally and on object storage."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from ssl_lib import outlock, storage
from ssl_lib.errors import StorageError

ROOT = Path(__file__).resolve().parents[1]

# A stage-like writer: holds the output's lock, writes five files one by one, each naming the writer.
WRITER = textwrap.dedent("""
    import sys, time
    from ssl_lib import outlock, storage
    out, name, pause = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with outlock.hold(out):
        print("acquired", name, time.time(), flush=True)
        for i in range(5):
            storage.write_text(storage.join(out, f"part{i}.txt"), name)
            time.sleep(pause)
        print("released", name, time.time(), flush=True)
""")


def _writer(out: str, name: str, pause: float, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, out, name, str(pause)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})


def _times(stdout: str) -> dict[str, float]:
    return {line.split()[0]: float(line.split()[2]) for line in stdout.splitlines()
            if line.startswith(("acquired", "released"))}


def _wait_for(path: Path, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.05)


def test_two_writers_of_one_local_output_never_interleave(tmp_path):
    out = str(tmp_path / "out")
    first = _writer(out, "first", 0.3)
    _wait_for(tmp_path / "out" / "part0.txt")
    second = _writer(out, "second", 0.0)
    a_out, _ = first.communicate(timeout=120)
    b_out, b_err = second.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, b_err
    a, b = _times(a_out), _times(b_out)
    assert b["acquired"] >= a["released"]  # the second waited for the first to finish
    assert "waiting for" in b_out and f"pid {first.pid}" in b_out
    assert {p.read_text() for p in (tmp_path / "out").glob("part*.txt")} == {"second"}


def test_second_writer_refuses_after_its_wait_naming_the_holder(tmp_path):
    out = str(tmp_path / "out")
    first = _writer(out, "first", 1.0)
    _wait_for(tmp_path / "out" / "part0.txt")
    second = _writer(out, "second", 0.0, env={"SSL_LOCK_WAIT": "0.5"})
    _, err = second.communicate(timeout=120)
    first.kill()
    first.wait()
    assert second.returncode != 0
    assert "is being written by another run" in err and f"pid {first.pid}" in err and out in err
    assert {p.read_text() for p in (tmp_path / "out").glob("part*.txt")} == {"first"}


def test_a_killed_holder_leaves_no_lock_behind(tmp_path):
    out = str(tmp_path / "out")
    first = _writer(out, "first", 5.0)
    _wait_for(tmp_path / "out" / "part0.txt")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    start = time.monotonic()
    with outlock.hold(out, wait=5.0):
        assert time.monotonic() - start < 1.0  # taken at once: the kernel dropped the dead one's lock


def test_stage_functions_hold_their_outputs_lock(tmp_path, monkeypatch):
    from ssl_lib.stages.skip import skip

    monkeypatch.setenv("SSL_LOCK_WAIT", "0.2")
    out = str(tmp_path / "skipped")
    with outlock.hold(out):
        with pytest.raises(StorageError, match="being written by another run"):
            outlock.writes("output")(lambda output: None)(output=out)
        with pytest.raises(StorageError, match="being written by another run"):
            skip(out, "knn")
    assert not storage.exists(out)
    skip(out, "knn")  # free again
    assert storage.is_complete(out)


def test_object_storage_lock_waits_refuses_and_breaks_a_dead_runs_lock(s3_server, monkeypatch):
    monkeypatch.setenv("SSL_LOCK_TTL", "2")
    out = f"s3://{s3_server}/lock-test/out"
    events = []

    def holder():
        with outlock.hold(out, wait=0):
            events.append(("acquired", time.monotonic()))
            time.sleep(3.0)  # longer than the TTL: the renewals keep it
            events.append(("released", time.monotonic()))

    t = threading.Thread(target=holder)
    t.start()
    while not events:
        time.sleep(0.02)
    with pytest.raises(StorageError, match="being written by another run"):
        with outlock.hold(out, wait=2.5, poll=0.2):
            pass
    with outlock.hold(out, wait=10, poll=0.1):
        got = time.monotonic()
    t.join()
    assert got >= events[-1][1]
    assert not storage.exists(outlock.lock_uri(out))  # released

    # a run killed while holding it: its lock stops being renewed and is broken after the TTL
    client = storage._client()
    bucket, key = storage._split(outlock.lock_uri(out))
    dead = {"host": "gone", "pid": 1, "since": time.time() - 60, "renewed": time.time() - 60, "token": "x"}
    client.put_object(Bucket=bucket, Key=key, Body=json.dumps(dead).encode())
    start = time.monotonic()
    with outlock.hold(out, wait=10, poll=0.1):
        assert time.monotonic() - start < 2.0
        holder_now = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        assert holder_now["pid"] == os.getpid()
