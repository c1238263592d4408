"""Stage `pretrain`: a prepared dataset + a config -> the final whole-training-state checkpoint.

Launchers: `local` runs the engine here (through torchrun when nproc > 1, gloo on CPU, NCCL on GPU);
`pytorchjob` runs the same entry point as a Kubeflow PyTorchJob. Both write checkpoints to a work
dir keyed by the config and the dataset's content, so a rerun after a kill resumes from the newest
checkpoint instead of epoch 0, and a finished run is not trained again.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys

from .. import outlock, storage
from ..config import load_config
from ..engine.pytorchjob import OBJECT_STORAGE_SECRET, current_namespace
from ..errors import ConfigError, DataError, SSLError
from ._cli import run_cli

DEFAULT_WORK_ROOT = os.path.join(os.path.expanduser("~"), ".cache", "ssl_lib", "work")


def run_key(config_text: str, dataset: str, nproc: int, num_workers: int = 1) -> str:
    """Content key of a training run: same config, same data, same world size -> same work dir."""
    manifest_uri = storage.join(dataset, "manifest.json")
    if not storage.exists(manifest_uri):
        raise DataError(f"prepared dataset not found: {manifest_uri} (run the prep stage first)")
    h = hashlib.sha256()
    for part in (config_text, storage.read_text(manifest_uri), f"{nproc}x{num_workers}"):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


@outlock.writes("output")
def pretrain(config: str, dataset: str, output: str, cfg_options: list[str] | None = None,
             work_dir: str = "", launcher: str = "local", nproc: int = 1, num_workers: int = 1,
             gpus_per_worker: int = 1, image: str = "", namespace: str = "",
             secret_env: str = OBJECT_STORAGE_SECRET, wait_timeout: int = 86400) -> dict:
    from ..engine import validate
    from ..engine.runner import final_checkpoint_name

    cfg_options = list(cfg_options or [])
    cfg = load_config(config, cfg_options)
    # Every problem of the config, for the world size this launch will have, before the dataset is
    # read, a work dir made or a job started.
    validate.check(cfg, world_size=nproc if launcher == "local" else num_workers * max(gpus_per_worker, 1))
    text = cfg.pretty_text
    key = run_key(text, dataset, nproc, num_workers)
    work_dir = work_dir or storage.join(os.environ.get("SSL_WORK_ROOT", DEFAULT_WORK_ROOT), f"pretrain-{key}")
    final = storage.join(work_dir, final_checkpoint_name(cfg))
    train_args = ["--config", str(config), "--dataset", dataset, "--work-dir", work_dir]
    if cfg_options:
        train_args += ["--cfg-options", *cfg_options]

    # One training per work dir at a time: a second identical run waits, then finds it finished.
    with outlock.hold(work_dir):
        if storage.exists(final):
            print(f"pretrain: {final} exists, training already finished", flush=True)
        elif launcher == "local":
            _run_local(config, dataset, work_dir, cfg_options, train_args, nproc)
        elif launcher == "pytorchjob":
            from ..engine.pytorchjob import run_pytorchjob

            if not storage.is_s3(work_dir):
                raise ConfigError(f"launcher=pytorchjob needs an s3:// work_dir (or SSL_WORK_ROOT), got {work_dir!r}")
            # The replicas get the resolved config (overrides applied, no _base_) from the work dir:
            # a config file on this pod's disk does not exist in theirs.
            config_uri = storage.join(work_dir, "config.py")
            storage.write_text(config_uri, text)
            job_args = ["--config", config_uri, "--dataset", dataset, "--work-dir", work_dir]
            run_pytorchjob(name=f"pretrain-{key}", namespace=namespace or current_namespace(), image=image,
                           command=["python", "-m", "ssl_lib.engine.train", *job_args],
                           num_workers=num_workers, gpus_per_worker=gpus_per_worker,
                           secret_env=secret_env or None, wait_timeout=wait_timeout)
        else:
            raise ConfigError(f"unknown launcher {launcher!r}; use 'local' or 'pytorchjob'")
    if not storage.exists(final):
        raise SSLError(f"training ended without its final checkpoint {final}")

    metrics = json.loads(storage.read_text(storage.join(work_dir, "train_metrics.json")))
    with storage.publish_dir(output) as staging:
        storage.download(final, staging / "checkpoint.pth")
        (staging / "config.py").write_text(text)
        log_uri = storage.join(work_dir, "train.log")
        if storage.exists(log_uri):
            storage.download(log_uri, staging / "train.log")
        metrics.update(work_dir=work_dir, checkpoint=storage.join(output, "checkpoint.pth"))
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def _run_local(config: str, dataset: str, work_dir: str, cfg_options: list[str], train_args: list[str],
               nproc: int) -> None:
    if nproc <= 1:
        from ..engine.train import train

        train(config, dataset, work_dir, cfg_options)
        return
    env = dict(os.environ, OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 1) // nproc)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "ssl_lib.engine.train", *train_args]
    result = subprocess.run(cmd, env=env)
    if result.returncode != 0:
        raise SSLError(f"torchrun exited with {result.returncode}: {' '.join(cmd)}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ssl_lib.stages.pretrain", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--dataset", required=True, help="prepared dataset folder or s3:// URI")
    p.add_argument("--output", required=True, help="where the checkpoint artifact goes")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE")
    p.add_argument("--work-dir", default="", help="checkpoints while training (default: keyed under SSL_WORK_ROOT)")
    p.add_argument("--launcher", default="local", choices=["local", "pytorchjob"])
    p.add_argument("--nproc", type=int, default=1, help="processes per node (torchrun)")
    p.add_argument("--num-workers", type=int, default=1, help="PyTorchJob replicas")
    p.add_argument("--gpus-per-worker", type=int, default=1)
    p.add_argument("--image", default="")
    p.add_argument("--namespace", default="", help="PyTorchJob namespace (default: this pod's, else kubeflow)")
    p.add_argument("--secret-env", default=OBJECT_STORAGE_SECRET,
                   help="Secret whose keys become the PyTorchJob replicas' env ('' for none)")
    p.add_argument("--wait-timeout", type=int, default=86400)
    return p


if __name__ == "__main__":
    sys.exit(run_cli(build_parser(), pretrain))
