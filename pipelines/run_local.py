"""Run the pipeline on this machine through kfp.local (SubprocessRunner, local caching on).

    python -m pipelines.run_local [--data fashion-mnist|<folder>|<list.txt>|s3://...] [--config C]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from kfp import local

from pipelines.pretrain_and_benchmark import DEFAULT_CONFIG, pretrain_and_benchmark


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="fashion-mnist", help="fashion-mnist, an image folder, a list file or s3://")
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--cfg-options", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--train-limit", type=int, default=10000)
    p.add_argument("--test-limit", type=int, default=2000)
    p.add_argument("--nproc", type=int, default=1)
    p.add_argument("--root", default="local_outputs", help="pipeline root for artifacts and the cache")
    p.add_argument("--no-cache", action="store_true")
    args = p.parse_args(argv)

    root = Path(args.root).resolve()
    os.environ.setdefault("SSL_WORK_ROOT", str(root / "work"))
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root),
               enable_caching=not args.no_cache, cache_root=str(root / ".kfp_cache"))
    start = time.time()
    run = pretrain_and_benchmark(source=args.data, config=args.config, cfg_options=args.cfg_options,
                                 train_limit=args.train_limit, test_limit=args.test_limit, nproc=args.nproc,
                                 history_uri=str(root / "history.jsonl"))
    report_dir = Path(run.output.path)
    metrics = json.loads((report_dir / "metrics.json").read_text())
    knn = metrics["knn"]
    print("\nkNN top-1 (%):")
    print("features            " + "".join(f"{'k=' + str(k):>9s}" for k in knn["ks"]))
    for name, res in knn["results"].items():
        print(f"{name:20s}" + "".join(f"{100 * res['top1'][str(k)]:9.2f}" for k in knn["ks"]))
    margin = knn.get("margin_over_random_init")
    if margin:
        print(f"margin over random init at k={margin['k']}: {100 * margin['top1']:+.2f} points")
    print(f"report:  {report_dir / 'report.md'}")
    print(f"html:    {report_dir / 'report.html'}")
    print(f"metrics: {report_dir / 'metrics.json'}")
    print(f"pipeline finished in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
