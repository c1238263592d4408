"""What a benchmark component does when the run's `benchmarks` list leaves it out: publish an empty
result that says so (the report leaves the protocol out), quickly, and nothing else."""
from __future__ import annotations

import json

from .. import outlock, storage


@outlock.writes("output")
def skip(output: str, protocol: str, metrics_path: str = "") -> dict:
    metrics = {"protocol": protocol, "skipped": True}
    with storage.publish_dir(output) as staging:
        (staging / "metrics.json").write_text(json.dumps(metrics))
    if metrics_path:
        with open(metrics_path, "w") as f:
            json.dump({}, f)
    return metrics


def write_metrics(metrics) -> None:
    """kfp.local treats an output artifact without a file as a cache miss; the metrics file gives it one."""
    with open(metrics.path, "w") as f:
        json.dump(metrics.metadata, f)
