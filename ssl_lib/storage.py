"""One interface over local paths and `s3://bucket/key` URIs (AWS S3 or MinIO).

Credentials and endpoint come only from the environment: the standard AWS variables
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION / AWS_DEFAULT_REGION)
plus AWS_ENDPOINT_URL, or its MinIO-style alias S3_ENDPOINT_URL, for a non-AWS endpoint.

Writes are atomic: a file is written under a temporary name and renamed (local) or uploaded in
one PUT (S3); a directory artifact is published by `publish_dir`, which writes a `_SUCCESS`
marker last, so a reader that checks `is_complete` never sees a half-written artifact.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

from .errors import StorageError

SUCCESS = "_SUCCESS"


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


def _client():
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url(),
                        region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")


def arrow_filesystem(uri: str):
    """(pyarrow filesystem, path inside it) for reading or writing Parquet at `uri`."""
    import pyarrow.fs as pafs

    if not is_s3(uri):
        return pafs.LocalFileSystem(), str(Path(uri).resolve())
    bucket, key = _split(uri)
    endpoint = endpoint_url()
    kwargs = dict(region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
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
    try:
        client.head_object(Bucket=bucket, Key=key)
        return True
    except client.exceptions.ClientError:
        resp = client.list_objects_v2(Bucket=bucket, Prefix=key.rstrip("/") + "/", MaxKeys=1)
        return resp.get("KeyCount", 0) > 0


def read_bytes(uri: str) -> bytes:
    try:
        if not is_s3(uri):
            return Path(uri).read_bytes()
        bucket, key = _split(uri)
        return _client().get_object(Bucket=bucket, Key=key)["Body"].read()
    except FileNotFoundError as err:
        raise StorageError(f"no such file: {uri}") from err
    except Exception as err:
        if type(err).__name__ in ("NoSuchKey", "ClientError", "NoSuchBucket"):
            raise StorageError(f"cannot read {uri}: {err}") from err
        raise


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def write_bytes(uri: str, data: bytes) -> None:
    """Write a whole file atomically."""
    if is_s3(uri):
        bucket, key = _split(uri)
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
    for page in _client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        names.extend(obj["Key"][len(prefix):] for obj in page.get("Contents", []))
    return sorted(names)


def download(uri: str, local: str | os.PathLike) -> Path:
    local = Path(local)
    local.parent.mkdir(parents=True, exist_ok=True)
    if is_s3(uri):
        bucket, key = _split(uri)
        tmp = local.with_name(f".{local.name}.tmp-{uuid.uuid4().hex[:8]}")
        _client().download_file(bucket, key, str(tmp))
        os.replace(tmp, local)
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
            bucket, key = _split(join(uri, SUCCESS))
            _client().delete_object(Bucket=bucket, Key=key)
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
        _client().delete_object(Bucket=bucket, Key=key)
    else:
        Path(uri).unlink(missing_ok=True)
