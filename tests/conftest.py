"""Shared fixtures: moto's S3 server on loopback, and tiny datasets in each raw format."""
from __future__ import annotations

import gzip
import io
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """Name of an empty bucket on a moto S3 server; AWS_* variables point at it for the session."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.delenv("AWS_REGION", raising=False)
        mp.delenv("S3_ENDPOINT_URL", raising=False)
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        mp.delenv("AWS_PROFILE", raising=False)
        bucket = "ssl-test"
        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1").create_bucket(Bucket=bucket)
        try:
            yield bucket
        finally:
            server.stop()


def image_bytes(color: tuple[int, int, int], fmt: str = "PNG", size: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format=fmt)
    return buf.getvalue()


def truncated_jpeg() -> bytes:
    data = image_bytes((200, 30, 30), "JPEG", size=64)
    return data[: len(data) // 2]


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)


@pytest.fixture
def make_dataset(tmp_path):
    """Factory for tiny raw datasets: `make_dataset(kind)` returns the path to give prep.

    kinds: "folder" (class folders, plus a corrupt x.jpg and a truncated JPEG), "split_folder"
    (train/ and val/), "list" (train.txt + val.txt with one missing file), "idx" (Fashion-MNIST
    style IDX files, 3 images per class in train, 1 in test).
    """
    colors = {"cat": (250, 10, 10), "dog": (10, 250, 10), "owl": (10, 10, 250)}

    def folder(root: Path, per_class: int = 3) -> Path:
        for name, color in colors.items():
            (root / name).mkdir(parents=True)
            for i in range(per_class):
                fmt = "JPEG" if i % 2 else "PNG"
                (root / name / f"{i}.{fmt.lower().replace('jpeg', 'jpg')}").write_bytes(image_bytes(color, fmt))
        return root

    def make(kind: str) -> Path:
        root = tmp_path / kind
        if kind == "folder":
            folder(root)
            (root / "cat" / "x.jpg").write_bytes(np.random.default_rng(0).bytes(300))
            (root / "dog" / "broken.jpg").write_bytes(truncated_jpeg())
            return root
        if kind == "split_folder":
            folder(root / "train")
            folder(root / "val", per_class=1)
            return root
        if kind == "list":
            folder(root / "images")
            lines = [f"images/{name}/{i}.{'jpg' if i % 2 else 'png'} {label}"
                     for label, name in enumerate(colors) for i in range(2)]
            (root / "train.txt").write_text("\n".join(lines + ["images/cat/missing.png 0"]) + "\n")
            (root / "val.txt").write_text("images/owl/2.png 2\nimages/cat/2.png 0\n")
            return root / "train.txt"
        if kind == "idx":
            root.mkdir()
            rng = np.random.default_rng(0)
            for stem, per_class, compress in (("train", 3, True), ("t10k", 1, False)):
                labels = np.tile(np.arange(10), per_class)
                images = rng.integers(0, 256, size=(len(labels), 28, 28))
                write_idx(root / f"{stem}-images-idx3-ubyte{'.gz' if compress else ''}", images, compress)
                write_idx(root / f"{stem}-labels-idx1-ubyte{'.gz' if compress else ''}", labels, compress)
            return root
        raise ValueError(kind)

    return make


TINY_CONFIG = str(Path(__file__).parent / "configs" / "mocov2_resnet18-w8_1xb16-coslr-2e_fmnist.py")


@pytest.fixture(scope="session")
def fmnist_tiny(tmp_path_factory) -> str:
    """A prepared Fashion-MNIST subset: 64 train / 40 test images."""
    from ssl_lib.stages.prep import prep

    out = tmp_path_factory.mktemp("fmnist") / "dataset"
    prep(source="fashion-mnist", output=str(out), train_limit=64, test_limit=40)
    return str(out)


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> str:
    """An extract-stage artifact (backbone.pth + backbone.json) of TINY_CONFIG's backbone at a seeded
    random init: a ResNet-18 with 8 base channels, what the benchmark stages' tests evaluate."""
    import torch

    from ssl_lib.config import load_config
    from ssl_lib.models import build_algorithm
    from ssl_lib.stages.extract import extract

    root = tmp_path_factory.mktemp("backbone")
    torch.manual_seed(0)
    model = build_algorithm(load_config(TINY_CONFIG).model)
    torch.save({"state_dict": model.state_dict()}, root / "model.pth")
    extract(str(root / "model.pth"), str(root / "backbone"), config=TINY_CONFIG)
    return str(root / "backbone")


@pytest.fixture(scope="session")
def _s3_fault_proxy(s3_server):
    """One proxy for the session, in front of the moto server `s3_server` points the AWS variables at."""
    import os

    from s3_fault_proxy import S3FaultProxy

    proxy = S3FaultProxy(os.environ["AWS_ENDPOINT_URL"], delay=1.5).start()
    try:
        yield proxy
    finally:
        proxy.stop()


S3_FAULT_BUDGET = {"SSL_S3_MAX_ATTEMPTS": "6", "SSL_S3_RETRY_SECONDS": "4", "SSL_S3_TIMEOUT_SECONDS": "1",
                   "SSL_S3_BACKOFF_SECONDS": "0.02"}


@pytest.fixture
def s3_faults(_s3_fault_proxy, s3_server, monkeypatch):
    """The fault-injecting proxy (tests/s3_fault_proxy.py) in front of `s3_server`'s bucket, fault-free
    until `.reset(rate, seed)` or `.set_rate(rate)`; for this test the AWS endpoint points at it and the
    retry budget is small (S3_FAULT_BUDGET). `.bucket` names the bucket, `.stats` counts requests and
    faults, `.log` holds each request."""
    _s3_fault_proxy.reset()
    _s3_fault_proxy.bucket = s3_server
    monkeypatch.setenv("AWS_ENDPOINT_URL", _s3_fault_proxy.endpoint)
    for name, value in S3_FAULT_BUDGET.items():
        monkeypatch.setenv(name, value)
    yield _s3_fault_proxy
    _s3_fault_proxy.set_rate(0.0)
