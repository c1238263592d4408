"""Object storage that fails: every `storage` operation and pyarrow's S3 filesystem retry throttling,
500s, resets and stalls (tests/s3_fault_proxy.py in front of moto) within a bounded budget, then give
up with one StorageError naming the URI; the endpoint and session-token variables are honoured."""
from __future__ import annotations

import collections
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import S3_FAULT_BUDGET
from ssl_lib import storage
from ssl_lib.errors import StorageError

TIMEOUT = float(S3_FAULT_BUDGET["SSL_S3_TIMEOUT_SECONDS"])


def _by_client(log) -> dict[str, collections.Counter]:
    """Requests and faults the proxy saw, per client library."""
    counts = {"boto3": collections.Counter(), "pyarrow": collections.Counter()}
    for request in log:
        client = "boto3" if request.user_agent.startswith("Boto3") else "pyarrow"
        counts[client]["requests"] += 1
        counts[client]["faults"] += request.fault is not None
    return counts


def _table(rows: int) -> pa.Table:
    rng = np.random.default_rng(1)
    return pa.table({"image": [rng.bytes(200) for _ in range(rows)], "label": np.arange(rows) % 10})


def _every_operation(root: str, tmp_path, rng) -> None:
    """Each storage operation once or more, checking that what comes back is what went in."""
    blobs = {f"obj-{i}.bin": rng.bytes(size) for i, size in enumerate([0, 1, 1000, 300_000, *range(100, 1000, 100)])}
    for name, data in blobs.items():
        storage.write_bytes(storage.join(root, "objects", name), data)
    assert {name: storage.read_bytes(storage.join(root, "objects", name)) for name in blobs} == blobs
    assert storage.exists(storage.join(root, "objects", "obj-2.bin")) and storage.exists(storage.join(root, "objects"))
    assert not storage.exists(storage.join(root, "nothing-here"))
    assert storage.listdir(storage.join(root, "objects")) == sorted(blobs)
    big = tmp_path / "big.bin"  # past boto3's 8 MB threshold: a multipart upload, each part retried alone
    big.write_bytes(rng.bytes(9 << 20))
    storage.upload(big, storage.join(root, "big.bin"))
    assert storage.download(storage.join(root, "big.bin"), tmp_path / "back" / "big.bin").read_bytes() == \
        big.read_bytes()
    with storage.publish_dir(storage.join(root, "artifact")) as staging:
        (staging / "a.txt").write_text("a")
        (staging / "sub").mkdir()
        (staging / "sub" / "b.bin").write_bytes(blobs["obj-3.bin"])
    assert storage.is_complete(storage.join(root, "artifact"))
    assert storage.listdir(storage.join(root, "artifact")) == ["_SUCCESS", "a.txt", "sub/b.bin"]
    table = _table(300)
    fs, path = storage.arrow_filesystem(storage.join(root, "table.parquet"))
    pq.write_table(table, path, filesystem=fs)
    assert pq.read_table(path, filesystem=fs).equals(table)


def test_every_storage_operation_survives_a_quarter_of_its_requests_failing(s3_faults, tmp_path, capsys):
    s3_faults.reset(rate=0.25, seed=11)
    before, start = collections.Counter(storage.STATS), time.monotonic()
    _every_operation(f"s3://{s3_faults.bucket}/quarter", tmp_path, np.random.default_rng(0))
    ours = collections.Counter(storage.STATS) - before
    seen = _by_client(s3_faults.log)
    # every faulted boto3 request was sent again exactly once, and none ran out of budget
    assert ours["requests"] == seen["boto3"]["requests"]
    assert ours["retries"] == seen["boto3"]["faults"] > 10 and ours["gave_up"] == 0
    assert seen["pyarrow"]["faults"] > 0 and all(s3_faults.stats.faults.values())
    with capsys.disabled():
        print(f"\n25% faults: {s3_faults.stats.requests} requests, faults {s3_faults.stats.faults}, "
              f"boto3 {dict(seen['boto3'])} with {ours['retries']} retries, pyarrow {dict(seen['pyarrow'])}, "
              f"{time.monotonic() - start:.1f} s")


def test_at_100_percent_faults_each_operation_gives_up_within_its_budget_naming_the_uri(s3_faults, tmp_path,
                                                                                       monkeypatch, capsys):
    root = f"s3://{s3_faults.bucket}/hopeless"
    storage.write_bytes(storage.join(root, "there.bin"), b"x")
    fs, path = storage.arrow_filesystem(storage.join(root, "table.parquet"))
    pq.write_table(_table(3), path, filesystem=fs)
    (tmp_path / "up.bin").write_bytes(b"up")
    attempts, seconds = 4, 2.0
    monkeypatch.setenv("SSL_S3_MAX_ATTEMPTS", str(attempts))
    monkeypatch.setenv("SSL_S3_RETRY_SECONDS", str(seconds))
    s3_faults.reset(rate=1.0, seed=5)

    def publish():
        with storage.publish_dir(storage.join(root, "artifact")) as staging:
            (staging / "a.txt").write_text("a")

    def at(name: str) -> str:
        return storage.join(root, name)

    ops = {"write": (lambda: storage.write_bytes(at("new.bin"), b"n"), at("new.bin")),
           "read": (lambda: storage.read_bytes(at("there.bin")), at("there.bin")),
           "exists": (lambda: storage.exists(at("there.bin")), at("there.bin")),
           "list": (lambda: storage.listdir(root), root),
           "download": (lambda: storage.download(at("there.bin"), tmp_path / "d.bin"), at("there.bin")),
           "upload": (lambda: storage.upload(tmp_path / "up.bin", at("up.bin")), at("up.bin")),
           "publish": (publish, at("artifact/_SUCCESS"))}
    took = {}
    for name, (op, uri) in ops.items():
        tic = time.monotonic()
        with pytest.raises(StorageError, match=r"gave up after \d attempts in [\d.]+ s") as info:
            op()
        took[name] = time.monotonic() - tic
        # one retry budget: no retry starts after `seconds`, and the last attempt ends within a timeout;
        # reading a body again (a cut GET) may spend one more budget
        assert took[name] < 2 * seconds + TIMEOUT + 1.0, (name, took[name])
        message = str(info.value)
        assert f" {uri}: " in message and "last error:" in message and "\n" not in message, message
    # pyarrow's own retry strategy: the same number of attempts, then an OSError naming the object
    tic = time.monotonic()
    with pytest.raises(OSError, match="hopeless/table.parquet"):
        storage.arrow_filesystem(storage.join(root, "table.parquet"))[0].open_input_file(path).read()
    took["parquet"] = time.monotonic() - tic
    assert took["parquet"] < attempts * (TIMEOUT + 1.0), took["parquet"]
    arrow = [r for r in s3_faults.log if not r.user_agent.startswith("Boto3")]
    assert attempts <= len(arrow) <= attempts + 1  # curl may resend once on a connection reset under it
    # an endpoint that stalls: each attempt costs a timeout, and the seconds run out before the attempts
    monkeypatch.setenv("SSL_S3_MAX_ATTEMPTS", "10")
    s3_faults.set_rate(1.0, mix={"delay": 1.0})
    tic = time.monotonic()
    with pytest.raises(StorageError, match=r"gave up after 2 attempts .*ReadTimeoutError"):
        storage.write_bytes(at("stalled.bin"), b"s")
    took["stalled"] = time.monotonic() - tic
    assert took["stalled"] < seconds + TIMEOUT + 0.5
    faults = dict(s3_faults.stats.faults)
    s3_faults.set_rate(0.0)
    assert storage.listdir(root) == ["table.parquet", "there.bin"]  # nothing written, nothing visible
    assert not storage.is_complete(storage.join(root, "artifact"))
    with capsys.disabled():
        print(f"\n100% faults: {s3_faults.stats.requests} requests, faults {faults}; seconds to give up: "
              + ", ".join(f"{k} {v:.1f}" for k, v in took.items()))


def test_an_artifact_whose_marker_cannot_be_written_is_not_complete(s3_faults):
    uri = f"s3://{s3_faults.bucket}/markerless"
    s3_faults.set_rate(1.0, only=lambda method, path: method == "PUT" and path.endswith("/_SUCCESS"))
    with pytest.raises(StorageError, match=f"cannot upload to {uri}/_SUCCESS: gave up after"):
        with storage.publish_dir(uri) as staging:
            (staging / "a.txt").write_text("a")
    s3_faults.set_rate(0.0)
    assert storage.listdir(uri) == ["a.txt"] and not storage.is_complete(uri)


def test_a_missing_object_is_named_at_once_without_retries(s3_faults, tmp_path):
    missing = f"s3://{s3_faults.bucket}/absent/thing.bin"
    with pytest.raises(StorageError, match=f"cannot read {missing}: no such object$"):
        storage.read_bytes(missing)
    with pytest.raises(StorageError, match=f"cannot download {missing}: no such object$"):
        storage.download(missing, tmp_path / "thing.bin")
    assert s3_faults.stats.requests == 2 and not list(tmp_path.iterdir())


def test_a_retry_budget_out_of_range_is_named(s3_faults, monkeypatch):
    monkeypatch.setenv("SSL_S3_MAX_ATTEMPTS", "0")
    with pytest.raises(StorageError, match="SSL_S3_MAX_ATTEMPTS='0': must be an integer >= 1"):
        storage.read_bytes(f"s3://{s3_faults.bucket}/any")


def test_s3_endpoint_url_alone_is_honoured_and_the_session_token_is_sent(s3_faults, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("S3_ENDPOINT_URL", s3_faults.endpoint)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-10")
    uri = f"s3://{s3_faults.bucket}/alias/table.parquet"
    storage.write_bytes(uri.replace("table.parquet", "a.bin"), b"a")
    assert storage.read_bytes(uri.replace("table.parquet", "a.bin")) == b"a"
    fs, path = storage.arrow_filesystem(uri)
    pq.write_table(_table(3), path, filesystem=fs)
    assert pq.read_table(path, filesystem=fs).num_rows == 3
    clients = {("boto3" if r.user_agent.startswith("Boto3") else r.user_agent.split("/")[0]): r.session_token
               for r in s3_faults.log}
    assert clients == {"boto3": "session-token-10", "aws-sdk-cpp": "session-token-10"}
