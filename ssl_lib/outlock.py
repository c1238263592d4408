"""One writer per output: a stage holds a lock beside its output (a local folder or an `s3://` prefix)
while it computes and publishes there, so two runs given the same `--output` (or two pretraining runs
sharing one work dir) never interleave their files. The second one waits for the first
(`SSL_LOCK_WAIT` seconds, default 600), then refuses with the holder's host, pid and start time.

Local: `fcntl.flock` on `.<name>.lock` beside the output; the kernel drops it when its holder dies,
even under SIGKILL. Object storage: a `<prefix>.lock` object created with `If-None-Match: *` (AWS S3,
MinIO and moto refuse a second create) and renewed every `SSL_LOCK_TTL` / 4 seconds by its holder; a
lock not renewed for `SSL_LOCK_TTL` seconds (default 120) belongs to a dead run and is broken, by a
delete conditional on its ETag so that two waiters cannot both break it.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

from . import storage
from .errors import StorageError

DEFAULT_WAIT = 600.0
DEFAULT_TTL = 120.0


def lock_uri(uri: str) -> str:
    """Where the lock of output `uri` lives: beside it, so that publishing the output never replaces it."""
    uri = str(uri).rstrip("/")
    if storage.is_s3(uri):
        return uri + ".lock"
    path = Path(uri).resolve()
    return str(path.parent / f".{path.name}.lock")


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError:
        raise StorageError(f"{name}={raw!r} is not a number of seconds") from None


def _describe(holder: dict | None) -> str:
    if not holder:
        return "another run"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
    return f"pid {holder.get('pid')} on {holder.get('host')}, since {since}"


@contextlib.contextmanager
def hold(uri: str, wait: float | None = None, poll: float = 1.0) -> Iterator[None]:
    """Hold the lock of output `uri` for the body; wait up to `wait` seconds (default `SSL_LOCK_WAIT`)
    for another holder, then raise StorageError naming it."""
    wait = _env_seconds("SSL_LOCK_WAIT", DEFAULT_WAIT) if wait is None else wait
    lock = (_S3Lock if storage.is_s3(uri) else _LocalLock)(lock_uri(uri))
    deadline = time.monotonic() + wait
    said = False
    while not lock.acquire():
        if time.monotonic() >= deadline:
            raise StorageError(f"{uri} is being written by another run ({_describe(lock.holder())}); waited "
                               f"{wait:.0f} s for its lock {lock.uri}. If that run is dead, delete the lock.")
        if not said:
            print(f"waiting for {uri}: {_describe(lock.holder())} is writing it (lock {lock.uri})", flush=True)
            said = True
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
    try:
        yield
    finally:
        lock.release()


def writes(*params: str) -> Callable:
    """Decorate a stage function: it holds the lock of each named output parameter while it runs."""

    def wrap(fn: Callable) -> Callable:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def run(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            with contextlib.ExitStack() as stack:
                for name in params:
                    if bound.arguments.get(name):
                        stack.enter_context(hold(str(bound.arguments[name])))
                return fn(*args, **kwargs)
        return run
    return wrap


def _me() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time(), "token": uuid.uuid4().hex}


class _LocalLock:
    def __init__(self, uri: str):
        self.uri = uri
        self.fd: int | None = None

    def acquire(self) -> bool:
        import fcntl

        Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.uri, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        # who holds it, for the message a waiter prints
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_me()).encode(), 0)
        self.fd = fd
        return True

    def holder(self) -> dict | None:
        try:
            return json.loads(Path(self.uri).read_text() or "null")
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock; the file stays for the next holder
            self.fd = None


class _S3Lock:
    def __init__(self, uri: str):
        self.uri = uri
        self.bucket, self.key = storage._split(uri)
        self.ttl = _env_seconds("SSL_LOCK_TTL", DEFAULT_TTL)
        self.info: dict | None = None
        self.etag: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _put(self, info: dict, **conditions) -> str | None:
        """The new ETag, or None when a condition did not hold."""
        client = storage._client()
        with storage.s3_errors("write lock", self.uri):
            try:
                body = json.dumps(info).encode()
                return client.put_object(Bucket=self.bucket, Key=self.key, Body=body, **conditions)["ETag"]
            except client.exceptions.ClientError as err:
                if err.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                    return None
                raise

    def _get(self) -> tuple[dict, str] | None:
        client = storage._client()
        with storage.s3_errors("read lock", self.uri):
            try:
                obj = client.get_object(Bucket=self.bucket, Key=self.key)
                return json.loads(obj["Body"].read() or b"{}"), obj["ETag"]
            except client.exceptions.NoSuchKey:
                return None
            except ValueError:
                return {}, ""

    def acquire(self) -> bool:
        info = dict(_me(), renewed=time.time())
        self.etag = self._put(info, IfNoneMatch="*")
        if self.etag is None:
            current = self._get()
            if current and time.time() - current[0].get("renewed", 0) > self.ttl:
                self._break(current[1])  # its holder stopped renewing it: a dead run
            return False
        self.info = info
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, daemon=True)
        self._renewer.start()
        return True

    def _break(self, etag: str) -> None:
        client = storage._client()
        with storage.s3_errors("delete lock", self.uri), contextlib.suppress(client.exceptions.ClientError):
            client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=etag)

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:  # only our own lock: one broken after we stalled for a whole TTL now belongs to another run
                etag = self._put(dict(self.info, renewed=time.time()), IfMatch=self.etag)
            except StorageError:
                continue  # a missed renewal is retried; the TTL allows three
            if etag is None:
                return
            self.etag = etag

    def holder(self) -> dict | None:
        current = self._get()
        return current[0] if current else None

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        current = self._get()
        if current and current[0].get("token") == (self.info or {}).get("token"):
            self._break(current[1])
        self.info = None
