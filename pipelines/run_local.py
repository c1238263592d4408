"""Run the pipeline on this machine through kfp.local (SubprocessRunner, local caching on).

    python -m pipelines.run_local [--data fashion-mnist|<folder>|<list.txt>|s3://...] [--config C]

The terminal gets one line per stage (status, seconds, cached ones marked), the table of every
benchmark and the report's paths; the stages' own logs go to `<root>/logs/run-<time>.log` (printed),
and to the terminal too with `--verbose` (or VERBOSE=1).
"""
from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import re
import sys
import time
import warnings
from pathlib import Path

from kfp import local

from pipelines.pretrain_and_benchmark import DEFAULT_CONFIG, pretrain_and_benchmark
from ssl_lib.benchmarks.tables import summary_text
from ssl_lib.stages.plan import PROTOCOLS

ANSI = re.compile(r"\x1b\[[0-9;]*m")
STARTED = re.compile(r"Executing task '([^']+)'")
FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")
CACHED = re.compile(r"Task '?([^' ]+)'? cache hit")
RAISED = re.compile(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception)): (.*)")


class StageProgress:
    """Stands in for sys.stdout while kfp.local runs: every line goes to the log file, and the lines
    that start, finish or take a stage from the cache become one progress line on the terminal."""

    def __init__(self, log, terminal, verbose: bool):
        self.log, self.terminal, self.verbose = log, terminal, verbose
        self.started: dict[str, float] = {}
        self.pending = ""
        self.failed: list[str] = []
        self.last_error = ""

    def write(self, text: str) -> int:
        self.log.write(text)
        if self.verbose:
            self.terminal.write(text)
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self._progress(ANSI.sub("", line))
        return len(text)

    def _progress(self, line: str) -> None:
        if m := RAISED.match(line):
            self.last_error = f"{m.group(1)}: {m.group(2)}"
        if m := STARTED.search(line):
            self.started[m.group(1)] = time.time()
            self._say(f"  {m.group(1):<22s} running ...")
        elif m := FINISHED.search(line):
            name, status = m.groups()
            seconds = time.time() - self.started.get(name, time.time())
            if status != "SUCCESS":
                self.failed.append(name)
            self._say(f"  {name:<22s} {status.lower():<8s} {seconds:7.1f} s")
        elif m := CACHED.search(line):
            self._say(f"  {m.group(1):<22s} cached")

    def _say(self, text: str) -> None:
        if not self.verbose:
            self.terminal.write(text + "\n")
            self.terminal.flush()

    def flush(self) -> None:
        self.log.flush()
        self.terminal.flush()

    def isatty(self) -> bool:
        return False


# Where `make run` departs from the pipeline's defaults to stay within 10 minutes on 2 cores (the
# VOC data's size is a flag above); `--set low_shot_samples=5 low_shot_layers=[] semi_epochs=0
# finetune_epochs=0 finetune_train_limit=0` gives the seed's settings back (0: the config's epochs, all images).
LOCAL_DEFAULTS = {"low_shot_samples": 2, "low_shot_layers": ["avgpool"], "semi_epochs": 1, "detseg_train_limit": 200,
                  "detseg_test_limit": 100, "detseg_mosaic_size": 64, "finetune_epochs": 1, "finetune_train_limit": 2000}


def _parse_set(items: list[str]) -> dict:
    import ast

    params = dict(LOCAL_DEFAULTS)
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in inspect.signature(pretrain_and_benchmark.pipeline_func).parameters:
            raise SystemExit(f"error: --set {item}: expected PARAM=VALUE with a parameter of the pipeline")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value  # a plain string
    return params


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="fashion-mnist", help="fashion-mnist, an image folder, a list file or s3://")
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--cfg-options", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--train-limit", type=int, default=10000)
    p.add_argument("--test-limit", type=int, default=2000)
    p.add_argument("--benchmarks", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    p.add_argument("--voc-data", default="fashion-mnist-mosaic",
                   help="multi-label data of the SVM protocols: fashion-mnist-mosaic or a VOC2007 folder")
    p.add_argument("--voc-train-limit", type=int, default=2000,
                   help="mosaic images to generate for trainval (0: VOC2007's 5011 / 4952, the seed's setting)")
    p.add_argument("--voc-test-limit", type=int, default=1000)
    p.add_argument("--voc-mosaic-size", type=int, default=64, help="mosaic canvas side in pixels (pipeline default 96)")
    p.add_argument("--nproc", type=int, default=1)
    p.add_argument("--set", nargs="*", default=[], metavar="PARAM=VALUE",
                   help="any other pipeline parameter, e.g. --set semi_epochs=20 'low_shot_ks=[1,8,96]'")
    p.add_argument("--root", default="local_outputs", help="pipeline root for artifacts and the cache")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--verbose", action="store_true", default=os.environ.get("VERBOSE", "") not in ("", "0"),
                   help="stream every stage's log to the terminal too (also VERBOSE=1)")
    args = p.parse_args(argv)

    root = Path(args.root).resolve()
    os.environ.setdefault("SSL_WORK_ROOT", str(root / "work"))
    log_path = root / "logs" / time.strftime("run-%Y%m%d-%H%M%S.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"pipeline ssl-pretrain-and-benchmark, config {args.config}; full log: {log_path}", flush=True)
    start = time.time()
    terminal = sys.stdout
    with open(log_path, "w", buffering=1) as log, warnings.catch_warnings():
        sys.stdout = progress = StageProgress(log, terminal, args.verbose)
        # kfp.local's notes (images it cannot use here, Kubernetes settings it ignores) belong in the log
        warnings.showwarning = lambda message, category, *_: print(f"{category.__name__}: {message}")
        # kfp.local logs its cache hits outside a task, through the root logger
        logging.basicConfig(level=logging.INFO, stream=progress, format="%(message)s", force=True)
        try:
            local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root),
                       enable_caching=not args.no_cache, cache_root=str(root / ".kfp_cache"))
            run = pretrain_and_benchmark(source=args.data, config=args.config, cfg_options=args.cfg_options,
                                         train_limit=args.train_limit, test_limit=args.test_limit, nproc=args.nproc,
                                         benchmarks=args.benchmarks, voc_source=args.voc_data,
                                         voc_train_limit=args.voc_train_limit, voc_test_limit=args.voc_test_limit,
                                         voc_mosaic_size=args.voc_mosaic_size, **_parse_set(args.set),
                                         history_uri=str(root / "history.jsonl"))
        except Exception as err:  # noqa: BLE001  (the log has the traceback; the terminal gets the cause)
            import traceback

            traceback.print_exc(file=log)
            sys.stdout = terminal
            stage = f"stage {', '.join(progress.failed)} failed" if progress.failed else "pipeline failed"
            cause = progress.last_error or (ANSI.sub("", str(err)).splitlines() or [repr(err)])[-1]
            print(f"{stage}: {cause}\nthe full log: {log_path}", file=sys.stderr)
            return 1
        finally:
            sys.stdout = terminal
    report_dir = Path(run.output.path)
    metrics = json.loads((report_dir / "metrics.json").read_text())
    print()
    print(summary_text({name: metrics[name] for name in PROTOCOLS if name in metrics}))
    knn = metrics.get("knn")
    if knn:
        print("\nkNN top-1 (%):")
        print("features            " + "".join(f"{'k=' + str(k):>9s}" for k in knn["ks"]))
        for name, res in knn["results"].items():
            print(f"{name:20s}" + "".join(f"{100 * res['top1'][str(k)]:9.2f}" for k in knn["ks"]))
        margin = knn.get("margin_over_random_init")
        if margin:
            print(f"margin over random init at k={margin['k']}: {100 * margin['top1']:+.2f} points")
    print(f"\nreport:  {report_dir / 'report.md'}")
    print(f"html:    {report_dir / 'report.html'}")
    print(f"metrics: {report_dir / 'metrics.json'}")
    print(f"log:     {log_path}")
    print(f"pipeline finished in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
