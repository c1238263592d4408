"""EvalHook: the workflow's 'val' phase. kNN top-1 of the backbone's features on a held-out split
(`data.val`), the training split as the neighbours, every `interval` epochs (iterations under
IterBasedRunner); `save_best` keeps the best checkpoint.

The config: `workflow = [('train', 1), ('val', 1)]` switches it on, `evaluation = dict(...)` sets it
(EVALUATION_KEYS, which the config validator also reads).
"""
from __future__ import annotations

import numbers

import numpy as np
import torch
from torch.utils.data import DataLoader

from ... import storage
from ...errors import ConfigError
from ...registry import DATASETS, build
from .. import checkpoint, dist
from .hook import Hook

METRIC = "knn_top1"  # percent, the seed's kNN protocol at `k` neighbours
WORKFLOWS = ([("train", 1)], [("train", 1), ("val", 1)])


def _positive_int(value) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) and value > 0 else "must be a positive int"


def _start(value) -> str | None:
    ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)
    return None if ok else "must be None or an int >= 0"


def _save_best(value) -> str | None:
    return None if value in (None, "auto", METRIC) else f"must be None, 'auto' or '{METRIC}'"


def _positive_number(value) -> str | None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and value > 0
    return None if ok else "must be a positive number"


# `evaluation` key -> its checker: the value -> None when valid, else what it must be (defaults: EvalHook's)
EVALUATION_KEYS = {
    "interval": _positive_int,
    "start": _start,
    "save_best": _save_best,
    "k": _positive_int,
    "temperature": _positive_number,
}


def workflow_phases(workflow) -> list[tuple]:
    return [tuple(phase) if isinstance(phase, (list, tuple)) else (phase,) for phase in workflow or []]


def check_workflow(workflow) -> str | None:
    """None for a workflow the runners run, else what it must be."""
    if isinstance(workflow, (list, tuple)) and workflow_phases(workflow) in WORKFLOWS:
        return None
    return ("must be [('train', 1)] or [('train', 1), ('val', 1)] (the 'val' phase is the kNN evaluation; "
            "evaluation.interval says how often it runs)")


def has_val_phase(cfg) -> bool:
    return any(phase[:1] == ("val",) for phase in workflow_phases(cfg.get("workflow")))


class EvalHook(Hook):
    """Evaluates after epoch (iteration) N when N % interval == 0, or with `start` when N >= start and
    (N - start) % interval == 0; `start=0` also evaluates the initial weights. One process (rank 0)
    extracts the features (eval mode, `data.val`'s pipeline, global average of the last stage) and
    votes; the others wait. The training's random state is put back afterwards, so evaluating does
    not change what training does.

    Runs before the checkpoint of the same epoch (built in just before CheckpointHook; mmcv's runs
    after it), so that checkpoint holds this evaluation in the hook's state and a resumed run
    continues the same history of best scores.
    """

    def __init__(self, interval: int = 1, save_best: str | None = None, k: int = 20, temperature: float = 0.07,
                 start: int | None = None):
        for key, value in (("interval", interval), ("save_best", save_best), ("k", k),
                           ("temperature", temperature), ("start", start)):
            problem = EVALUATION_KEYS[key](value)
            if problem:
                raise ConfigError(f"evaluation.{key} = {value!r}: {problem}")
        self.interval, self.save_best, self.k, self.temperature, self.start = interval, save_best, k, temperature, start
        self.best_score: float | None = None
        self.best_ckpt: str | None = None
        self.history: list[dict] = []
        self.datasets: dict | None = None

    def setup(self, runner) -> None:
        if not runner.cfg.data.get("val"):
            raise ConfigError("workflow has a 'val' phase but data.val is not set: give a held-out split, e.g. "
                              "data.val = dict(type='SingleViewDataset', data_source=dict(type='ParquetShards', "
                              "split='test'), pipeline=eval_pipeline)")
        if getattr(runner.dataset.data_source, "multi_label", False):
            raise ConfigError("workflow has a 'val' phase, but kNN votes for one class per image and this dataset "
                              "is multi-label")

    def _due(self, n: int) -> bool:
        if self.start is None:
            return n % self.interval == 0
        return n >= self.start and (n - self.start) % self.interval == 0

    def before_train_epoch(self, runner) -> None:
        if self.start == 0 and runner.global_iter == 0:
            self.evaluate(runner, 0, 0)

    def after_train_epoch(self, runner) -> None:
        if runner.kind == "epoch" and self._due(runner.epoch + 1):
            self.evaluate(runner, runner.epoch + 1, runner.global_iter)

    def after_train_iter(self, runner) -> None:
        if runner.kind == "iter" and self._due(runner.global_iter + 1):
            self.evaluate(runner, runner.global_iter + 1, runner.global_iter + 1)

    def evaluate(self, runner, n: int, iters: int) -> None:
        """The 'val' phase after `n` epochs (iterations), `iters` iterations: hooks' before_val_epoch
        (EMA swaps its averages in), kNN, after_val_epoch (loggers write the figures), then the best
        checkpoint."""
        runner.call_hook("before_val_epoch")
        score = None
        if runner.rank == 0:
            rng = checkpoint.rng_state()
            try:
                score = self._knn_top1(runner)
            finally:
                checkpoint.set_rng_state(rng)
        score = dist.all_gather_object(score)[0]
        runner.eval_results = {runner.kind: n, "iter": iters, METRIC: score, "k": self.k}
        self.history.append(dict(runner.eval_results))
        runner.call_hook("after_val_epoch")
        if self.save_best and (self.best_score is None or score > self.best_score):
            previous = self.best_ckpt
            self.best_score, self.best_ckpt = score, f"best_{METRIC}_{runner.kind}_{n}.pth"
            runner.write_checkpoint(self.best_ckpt)
            if runner.rank == 0 and previous and previous != self.best_ckpt:
                storage.remove(storage.join(runner.work_dir, previous))

    def _knn_top1(self, runner) -> float:
        from ...benchmarks.knn import knn_classify

        if self.datasets is None:
            val_cfg = dict(runner.cfg.data.val)
            val_cfg["data_source"] = dict(val_cfg["data_source"], root=runner.dataset_uri)
            val = build(val_cfg, DATASETS)
            train = build(dict(type="SingleViewDataset", data_source=runner.dataset.data_source,
                               pipeline=val_cfg["pipeline"]), DATASETS)
            self.datasets = {"train": train, "val": val}
        (train_x, train_y), (val_x, val_y) = (self._features(runner, self.datasets[s]) for s in ("train", "val"))
        result = knn_classify(train_x, train_y, val_x, val_y, ks=(self.k,), temperature=self.temperature)
        return 100 * result["top1"][self.k]

    @staticmethod
    @torch.no_grad()
    def _features(runner, ds) -> tuple[np.ndarray, np.ndarray]:
        loader = DataLoader(ds, batch_size=runner.batch_size, num_workers=runner.num_workers, shuffle=False,
                            generator=torch.Generator().manual_seed(0))
        backbone = runner.algorithm.backbone
        training = backbone.training
        backbone.eval()
        feats, labels = [], []
        for batch in loader:
            last = backbone(batch["img"].to(runner.device))[-1]
            feats.append(torch.nn.functional.adaptive_avg_pool2d(last, 1).flatten(1).float().cpu())
            labels.append(batch["label"])
        backbone.train(training)
        return torch.cat(feats).numpy(), torch.cat(labels).numpy()

    def state_dict(self) -> dict:
        return {"best_score": self.best_score, "best_ckpt": self.best_ckpt, "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.best_score, self.best_ckpt = state["best_score"], state["best_ckpt"]
            self.history = list(state["history"])

    def metrics(self) -> dict:
        out = {"evaluation": self.history}
        if self.save_best:
            out.update(best_knn_top1=self.best_score, best_checkpoint=self.best_ckpt)
        return out
