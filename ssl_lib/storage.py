"""One interface over local paths and `s3://bucket/key` URIs (AWS S3 or MinIO).

Credentials and endpoint come only from the environment: the standard AWS variables
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION / AWS_DEFAULT_REGION)
plus AWS_ENDPOINT_URL, or its MinIO-style alias S3_ENDPOINT_URL, for a non-AWS endpoint.

Writes are atomic: a file is written under a temporary name and renamed (local) or uploaded in
one PUT (S3); a directory artifact is published by `publish_dir`, which writes a `_SUCCESS`
marker last, so a reader that checks `is_complete` never sees a half-written artifact.

Object storage fails now and then: it throttles (503 SlowDown), has 500s, drops connections and
stalls. Every S3 request, through `_client()` or `arrow_filesystem`, is retried on those with
exponential backoff and jitter, within a budget read from the environment:

    SSL_S3_MAX_ATTEMPTS      attempts per request, the first included (default 10)
    SSL_S3_RETRY_SECONDS     no retry starts after this many seconds of one request (default 300;
                             boto3 only, pyarrow counts attempts only)
    SSL_S3_TIMEOUT_SECONDS   connect (at most 10 s) and read timeout of one attempt (default 60)
    SSL_S3_BACKOFF_SECONDS   the first pause; it doubles each retry, up to 20 s (default 0.25)

Past the budget, or on an error that retrying cannot fix (no such key, access denied), an
operation raises one StorageError naming the URI, the attempts and the last error.
"""
from __future__ import annotations

import collections
import contextlib
import functools
import io
import logging
import os
import random
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import StorageError

SUCCESS = "_SUCCESS"
logger = logging.getLogger(__name__)

# Error codes S3 and MinIO send for a request that may well succeed if sent again; any 5xx and 429 too.
TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "TooManyRequests", "RequestLimitExceeded",
                   "RequestTimeout", "RequestTimeoutException", "InternalError", "ServiceUnavailable",
                   "BandwidthLimitExceeded", "XMinioServerNotInitialized"}
NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
MAX_PAUSE = 20.0
MAX_CONNECT_TIMEOUT = 10.0

# boto3 requests made, retries, and requests that ran out of budget, in this process (for reports and tests)
STATS: collections.Counter = collections.Counter()
_lock = threading.Lock()
# The jitter draws from its own generator: the global one is part of a training checkpoint's state,
# and a retry must not change what training does or writes.
_jitter = random.Random()


@dataclass(frozen=True)
class RetryPolicy:
    """The retry budget of one S3 request, from the SSL_S3_* variables (see the module's docstring)."""
    attempts: int = 10
    seconds: float = 300.0
    timeout: float = 60.0
    backoff: float = 0.25

    @classmethod
    def from_env(cls) -> "RetryPolicy":
        def read(name: str, kind, default, minimum):
            raw = os.environ.get(name, "")
            try:
                value = kind(raw) if raw else default
            except ValueError:
                value = None
            if value is None or value < minimum:
                what = "an integer" if kind is int else "a number of seconds"
                raise StorageError(f"{name}={raw!r}: must be {what} >= {minimum}")
            return value

        return cls(attempts=read("SSL_S3_MAX_ATTEMPTS", int, cls.attempts, 1),
                   seconds=read("SSL_S3_RETRY_SECONDS", float, cls.seconds, 0),
                   timeout=read("SSL_S3_TIMEOUT_SECONDS", float, cls.timeout, 0.1),
                   backoff=read("SSL_S3_BACKOFF_SECONDS", float, cls.backoff, 0))

    def pause(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt`: exponential, half of it jittered so that
        many clients throttled together do not come back together."""
        ceiling = min(MAX_PAUSE, self.backoff * 2 ** (attempt - 1))
        return ceiling / 2 + _jitter.uniform(0, ceiling / 2)

    def describe(self) -> str:
        return f"SSL_S3_MAX_ATTEMPTS={self.attempts}, SSL_S3_RETRY_SECONDS={self.seconds:g}"


def _error_code(err) -> tuple[str, int]:
    response = getattr(err, "response", None) or {}
    return (str(response.get("Error", {}).get("Code", "")),
            int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0))


def _is_transient(err: BaseException) -> bool:
    """Throttling, a 5xx, a dropped connection or a timeout: worth sending again."""
    from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, HTTPClientError, \
        IncompleteReadError
    from urllib3.exceptions import ProtocolError, TimeoutError as Urllib3Timeout

    if isinstance(err, ClientError):
        code, status = _error_code(err)
        return code in TRANSIENT_CODES or status >= 500 or status == 429
    return isinstance(err, (BotoConnectionError, HTTPClientError, IncompleteReadError, ProtocolError, Urllib3Timeout,
                            ConnectionError, TimeoutError))


def _started(context=None, **_) -> None:
    context["ssl_started"] = time.monotonic()


def _needs_retry(policy: RetryPolicy, attempts: int, response=None, caught_exception=None, request_dict=None,
                 operation=None, **_) -> float | None:
    """botocore's `needs-retry` hook, called after every attempt: seconds to wait before the next
    one, or None to stop (success, an error retrying cannot fix, or the budget is spent)."""
    from botocore.exceptions import ClientError

    err = caught_exception
    if err is None and response is not None and response[0].status_code >= 300:
        err = ClientError(response[1], operation.name)
    with _lock:
        STATS["requests"] += 1
    if err is None or not _is_transient(err):
        return None
    elapsed = time.monotonic() - request_dict["context"].get("ssl_started", time.monotonic())
    pause = policy.pause(attempts)
    if attempts >= policy.attempts or elapsed + pause > policy.seconds:
        if caught_exception is not None:
            caught_exception.ssl_attempts = attempts  # a ClientError carries its count in RetryAttempts
        with _lock:
            STATS["gave_up"] += 1
        return None
    with _lock:
        STATS["retries"] += 1
    logger.info("%s: %s; retry %d of %d in %.2f s", operation.name, _short(err), attempts, policy.attempts - 1, pause)
    return pause


def _short(err: BaseException) -> str:
    code, status = _error_code(err)
    if code or status:
        message = (getattr(err, "response", {}) or {}).get("Error", {}).get("Message", "")
        return f"{code or status}" + (f" (HTTP {status})" if status and str(status) != code else "") + \
            (f": {message}" if message else "")
    return f"{type(err).__name__}: {err}"


def _attempts(err: BaseException) -> int | None:
    if hasattr(err, "ssl_attempts"):
        return err.ssl_attempts
    retries = (getattr(err, "response", None) or {}).get("ResponseMetadata", {}).get("RetryAttempts")
    return None if retries is None else retries + 1


def _cause(err: BaseException) -> BaseException:
    """The botocore error inside one that boto3's transfer layer wrapped (S3UploadFailedError and the like)."""
    seen = err
    while seen is not None:
        if type(seen).__module__.startswith("botocore"):
            return seen
        seen = seen.__cause__ or seen.__context__
    return err


@contextlib.contextmanager
def s3_errors(what: str, uri: str) -> Iterator[None]:
    """Turn what boto3 raises into one StorageError naming the URI, the attempts and the last error.
    For code that calls `_client()` itself: its requests are retried, this names the failure."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    start = time.monotonic()
    try:
        yield
    except (BotoCoreError, ClientError, Boto3Error) as raised:
        err = _cause(raised)
        code, _ = _error_code(err)
        if code in NOT_FOUND_CODES:
            reason = "no such bucket" if code == "NoSuchBucket" else "no such object"
            raise StorageError(f"cannot {what} {uri}: {reason}") from raised
        if not _is_transient(err):
            raise StorageError(f"cannot {what} {uri}: {_short(err)}") from raised
        n = _attempts(err)
        raise StorageError(f"cannot {what} {uri}: gave up{f' after {n} attempts' if n else ''} in "
                           f"{time.monotonic() - start:.1f} s ({RetryPolicy.from_env().describe()}); last error: "
                           f"{_short(err)}") from raised


def is_s3(uri: str) -> bool:
    return str(uri).startswith(("s3://", "minio://"))


def _split(uri: str) -> tuple[str, str]:
    rest = str(uri).split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise StorageError(f"malformed object-storage URI {uri!r}: expected s3://bucket/key")
    return bucket, key.strip("/")


def join(uri: str, *parts: str) -> str:
    if is_s3(uri):
        return "/".join([str(uri).rstrip("/"), *(p.strip("/") for p in parts)])
    return str(Path(uri, *parts))


def endpoint_url() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("S3_ENDPOINT_URL") or None


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def _client():
    """A boto3 S3 client whose every request is retried by our policy (botocore's own retries off,
    so that the attempts counted in STATS are all there are)."""
    keys = (("aws_access_key_id", "AWS_ACCESS_KEY_ID"), ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
            ("aws_session_token", "AWS_SESSION_TOKEN"))
    # Keys from the environment as they are now: boto3's default session would keep the first ones it saw.
    credentials = tuple((arg, os.environ[name]) for arg, name in keys if os.environ.get(name)) \
        if os.environ.get("AWS_ACCESS_KEY_ID") else ()
    return _cached_client(os.getpid(), endpoint_url(), _region(), credentials, RetryPolicy.from_env())


@functools.lru_cache(maxsize=8)
def _cached_client(pid: int, endpoint: str | None, region: str, credentials: tuple, policy: RetryPolicy):
    """One client per process and settings: building one costs more than most requests."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "total_max_attempts": 1},
                    connect_timeout=min(policy.timeout, MAX_CONNECT_TIMEOUT), read_timeout=policy.timeout)
    with _lock:  # boto3's default session is not safe to build clients from in two threads at once
        client = boto3.client("s3", endpoint_url=endpoint, region_name=region, config=config, **dict(credentials))
    client.meta.events.register("before-call.s3", _started)
    client.meta.events.register("needs-retry.s3", functools.partial(_needs_retry, policy))
    return client


def arrow_filesystem(uri: str):
    """(pyarrow filesystem, path inside it) for reading or writing Parquet at `uri`."""
    import pyarrow.fs as pafs

    if not is_s3(uri):
        return pafs.LocalFileSystem(), str(Path(uri).resolve())
    bucket, key = _split(uri)
    endpoint = endpoint_url()
    policy = RetryPolicy.from_env()
    kwargs = dict(region=_region(), connect_timeout=min(policy.timeout, MAX_CONNECT_TIMEOUT),
                  request_timeout=policy.timeout,
                  retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=policy.attempts))
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        kwargs.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        kwargs.update(access_key=os.environ["AWS_ACCESS_KEY_ID"],
                      secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
                      session_token=os.environ.get("AWS_SESSION_TOKEN"))
    return pafs.S3FileSystem(**kwargs), f"{bucket}/{key}"


def exists(uri: str) -> bool:
    if not is_s3(uri):
        return Path(uri).exists()
    bucket, key = _split(uri)
    client = _client()
    with s3_errors("check", uri):
        try:
            client.head_object(Bucket=bucket, Key=key)
            return True
        except client.exceptions.ClientError as err:
            if _is_transient(err):
                raise
        # not an object; a folder if anything is below it
        resp = client.list_objects_v2(Bucket=bucket, Prefix=key.rstrip("/") + "/", MaxKeys=1)
        return resp.get("KeyCount", 0) > 0


def _fetch(uri: str, out: BinaryIO) -> None:
    """GET the object at `uri` into `out`. A connection dropped mid-body is not seen by the client's
    retries (the GET was answered), so the body is fetched again here, under the same policy."""
    bucket, key = _split(uri)
    policy, start = RetryPolicy.from_env(), time.monotonic()
    for attempt in range(1, policy.attempts + 1):
        body = _client().get_object(Bucket=bucket, Key=key)["Body"]
        try:
            for chunk in body.iter_chunks(1 << 20):
                out.write(chunk)
            return
        except Exception as err:
            pause = policy.pause(attempt)
            if not _is_transient(err) or attempt == policy.attempts or \
                    time.monotonic() - start + pause > policy.seconds:
                err.ssl_attempts = attempt
                raise
            with _lock:
                STATS["retries"] += 1
            logger.info("GetObject %s: %s; fetching it again in %.2f s", uri, _short(err), pause)
            out.seek(0)
            out.truncate()
            time.sleep(pause)


def read_bytes(uri: str) -> bytes:
    if not is_s3(uri):
        try:
            return Path(uri).read_bytes()
        except FileNotFoundError as err:
            raise StorageError(f"no such file: {uri}") from err
    buf = io.BytesIO()
    with s3_errors("read", uri):
        _fetch(uri, buf)
    return buf.getvalue()


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def write_bytes(uri: str, data: bytes) -> None:
    """Write a whole file atomically."""
    if is_s3(uri):
        bucket, key = _split(uri)
        with s3_errors("write", uri):
            _client().put_object(Bucket=bucket, Key=key, Body=data)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_text(uri: str, text: str) -> None:
    write_bytes(uri, text.encode("utf-8"))


def listdir(uri: str) -> list[str]:
    """Names (not full URIs) of the files directly or recursively below `uri`, sorted, relative to it."""
    if not is_s3(uri):
        root = Path(uri)
        if not root.is_dir():
            return []
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    bucket, key = _split(uri)
    prefix = key + "/" if key else ""
    names = []
    with s3_errors("list", uri):
        for page in _client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            names.extend(obj["Key"][len(prefix):] for obj in page.get("Contents", []))
    return sorted(names)


def download(uri: str, local: str | os.PathLike) -> Path:
    local = Path(local)
    local.parent.mkdir(parents=True, exist_ok=True)
    if is_s3(uri):
        tmp = local.with_name(f".{local.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            with s3_errors("download", uri), open(tmp, "wb") as out:
                _fetch(uri, out)
            os.replace(tmp, local)
        finally:
            tmp.unlink(missing_ok=True)
    else:
        if not Path(uri).exists():
            raise StorageError(f"no such file: {uri}")
        shutil.copyfile(uri, local)
    return local


def local_dir(uri: str, tmp: str | os.PathLike) -> Path:
    """A folder on local disk for libraries that read files only: a local `uri` as it is, an s3:// prefix
    downloaded whole into `tmp`/dataset."""
    if not is_s3(uri):
        return Path(uri).resolve()
    local = Path(tmp) / "dataset"
    for name in listdir(uri):
        download(join(uri, name), local / name)
    return local


def upload(local: str | os.PathLike, uri: str) -> None:
    if is_s3(uri):
        bucket, key = _split(uri)
        with s3_errors("upload to", uri):
            _client().upload_file(str(local), bucket, key)
    else:
        write_bytes(uri, Path(local).read_bytes())


def is_complete(uri: str) -> bool:
    """True when the directory artifact at `uri` was fully published."""
    return exists(join(uri, SUCCESS))


@contextlib.contextmanager
def publish_dir(uri: str) -> Iterator[Path]:
    """Yield a local staging folder; on success publish its files to `uri`, `_SUCCESS` last.

    Local: the staging folder sits beside the target and is renamed over it in one step.
    S3: files are uploaded, then the marker; readers check `is_complete` first.
    On an exception nothing is published and the staging folder is removed.
    """
    if is_s3(uri):
        staging = Path(tempfile.mkdtemp(prefix="ssl-publish-"))
    else:
        target = Path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
        staging.chmod(0o755)  # mkdtemp makes it owner-only; the published folder must be readable like any other
    try:
        yield staging
        (staging / SUCCESS).write_text("")
        if is_s3(uri):
            files = sorted(p for p in staging.rglob("*") if p.is_file() and p.name != SUCCESS)
            # An earlier marker would vouch for a mix of old and new files while these upload.
            remove(join(uri, SUCCESS))
            for f in files:
                upload(f, join(uri, str(f.relative_to(staging))))
            upload(staging / SUCCESS, join(uri, SUCCESS))
        else:
            target = Path(uri)
            if target.exists():
                # KFP pre-creates output folders; replace the contents, not the folder it watches.
                old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
                os.replace(target, old)
                os.replace(staging, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def remove(uri: str) -> None:
    if is_s3(uri):
        bucket, key = _split(uri)
        with s3_errors("delete", uri):
            _client().delete_object(Bucket=bucket, Key=key)
    else:
        Path(uri).unlink(missing_ok=True)
