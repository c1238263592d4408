"""The rest of the seed's runtime: IterBasedRunner, the 'val' workflow phase with EvalHook (kNN,
save_best), TensorBoard event files, EMAHook, cyclic LR and momentum. The example configs under
ssl_lib/configs/selfsup/mocov2/ train on the tiny Fashion-MNIST split, are interrupted, resume and end
bit-identical to uninterrupted runs."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from ssl_lib import storage
from ssl_lib.config import load_config, resolve_config_path
from ssl_lib.engine import checkpoint
from ssl_lib.engine.hooks import EvalHook, Hook
from ssl_lib.engine.runner import build_runner, final_checkpoint_name
from ssl_lib.engine.schedules import lr_at, momentum_at
from ssl_lib.engine.train import train
from ssl_lib.registry import HOOKS

REPO = Path(__file__).resolve().parents[1]
ITER_CONFIG = str(resolve_config_path("selfsup/mocov2/mocov2_resnet18-w8_1xb16-cycliclr-200it_fmnist.py"))
EVAL_CONFIG = str(resolve_config_path("selfsup/mocov2/mocov2_resnet18-w8_1xb16-coslr-ema-knn-2e_fmnist.py"))


class Stopped(RuntimeError):
    pass


@HOOKS.register_module()
class _StopAfter(Hook):
    """Ends the run with an error after iteration `iters` (1-based), after every other hook: a crash.
    The TensorBoard writers are flushed first, as a long run's would have been (every 2 minutes)."""

    priority = "LOWEST"

    def __init__(self, iters: int):
        self.iters = iters

    def after_train_iter(self, runner) -> None:
        if runner.global_iter + 1 == self.iters:
            for writer in runner.log_writers:
                writer.flush()
            raise Stopped(f"stopped after iteration {self.iters}")


@HOOKS.register_module()
class _ParamRecorder(Hook):
    """The model's parameters before training and after each iteration (after every other hook)."""

    priority = "LOWEST"

    def __init__(self):
        self.seen: list[dict] = []

    def _record(self, runner) -> None:
        self.seen.append({n: p.detach().clone() for n, p in runner.algorithm.named_parameters()})

    def before_run(self, runner) -> None:
        self._record(runner)

    def after_train_iter(self, runner) -> None:
        self._record(runner)


def _config(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def _assert_same_state(ref: dict, got: dict) -> None:
    for key in ref["state_dict"]:
        assert torch.equal(ref["state_dict"][key], got["state_dict"][key]), f"{key} differs from the uninterrupted run"
    for slot, state in ref["optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(value, got["optimizer"]["state"][slot][key]), f"optimizer state {slot}.{key} differs"


def _scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


# -- schedules, pure -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy, it, expected", [
    # 10 iterations, one cycle: up for int(0.4 * 10) = 4 iterations from 1x to 5x, then down over 6 to 1x
    ("linear", 0, 1.0), ("linear", 2, 3.0), ("linear", 4, 5.0), ("linear", 7, 3.0), ("linear", 9, 5 - 4 * 5 / 6),
    ("cos", 0, 1.0), ("cos", 2, 3.0), ("cos", 4, 5.0), ("cos", 7, 3.0),
])
def test_cyclic_lr_climbs_to_the_peak_ratio_then_anneals_to_the_end_ratio_as_mmcv(strategy, it, expected):
    cfg = dict(policy="cyclic", target_ratio=(5, 1), cyclic_times=1, step_ratio_up=0.4, anneal_strategy=strategy)
    assert lr_at(cfg, 2.0, 0, it, 100, 1, max_iters=10) == 2.0 * expected
    # the epoch runner: the same iterations, counted as epoch * iters_per_epoch + iteration
    assert lr_at(cfg, 2.0, it // 5, it % 5, 5, 2) == 2.0 * expected


@pytest.mark.parametrize("it, expected", [
    # 2 cycles of 5 iterations, up for int(0.4 * 5) = 2; gamma 0.5 halves the swing of the 2nd cycle:
    # its peak is 1 - 0.5 + 5 * 0.5 = 3
    (0, 1.0), (1, 3.0), (2, 5.0), (5, 1.0), (6, 2.0), (7, 3.0), (8, 3 + (1 - 3) / 3),
])
def test_cyclic_lr_repeats_its_cycles_and_gamma_shrinks_each_swing(it, expected):
    cfg = dict(policy="Cyclic", target_ratio=[5, 1], cyclic_times=2, step_ratio_up=0.4, anneal_strategy="linear",
               gamma=0.5)
    assert lr_at(cfg, 1.0, 0, it, 100, 1, max_iters=10) == expected


@pytest.mark.parametrize("it, expected", [(0, 0.95), (2, 0.9), (4, 0.85), (7, 0.9)])
def test_cyclic_momentum_mirrors_the_lr_cycle(it, expected):
    cfg = dict(policy="cyclic", target_ratio=(0.85 / 0.95, 1), cyclic_times=1, step_ratio_up=0.4)
    assert momentum_at(cfg, 0.95, 0, it, 100, 1, max_iters=10) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("cfg, epoch, it, expected", [
    (dict(policy="CosineAnnealing", min_momentum_ratio=0.5), 1, 3, 0.9 * 0.75),  # by epoch: 1 of 2 epochs, half-way
    (dict(policy="CosineAnnealing", min_momentum=0.5, by_epoch=False), 0, 5, 0.7),  # 5 of 10 iterations
    (dict(policy="CosineAnnealing", min_momentum=0.5, by_epoch=False), 0, 0, 0.9),
])
def test_cosine_annealing_momentum_goes_from_the_base_to_its_minimum(cfg, epoch, it, expected):
    assert momentum_at(cfg, 0.9, epoch, it, 5, 2) == pytest.approx(expected, abs=1e-15)


def test_the_final_checkpoint_is_named_by_the_runner():
    assert final_checkpoint_name(load_config(ITER_CONFIG)) == "iter_200.pth"
    assert final_checkpoint_name(load_config(EVAL_CONFIG)) == "epoch_2.pth"


@pytest.mark.parametrize("kwargs, due", [
    (dict(interval=2), [2, 4, 6]), (dict(interval=2, start=3), [3, 5]), (dict(interval=1, start=5), [5, 6])])
def test_evaluation_runs_every_interval_from_start_as_mmcv(kwargs, due):
    hook = EvalHook(**kwargs)
    assert [n for n in range(1, 7) if hook._due(n)] == due


def test_save_best_keeps_only_the_checkpoint_of_the_best_score_so_far(tmp_path, monkeypatch):
    scores = iter([10.0, 30.0, 20.0, 40.0])
    hook = EvalHook(save_best="auto")
    monkeypatch.setattr(hook, "_knn_top1", lambda runner: next(scores))

    class Runner:  # what EvalHook reads of the epoch runner
        rank, kind, work_dir, epoch, global_iter = 0, "epoch", str(tmp_path), 0, 0

        def call_hook(self, name):
            pass

        def write_checkpoint(self, name):
            (tmp_path / name).write_bytes(b"state")

    runner, kept = Runner(), []
    for epoch in range(4):
        runner.epoch, runner.global_iter = epoch, 4 * (epoch + 1)
        hook.after_train_epoch(runner)
        kept.append([p.name for p in tmp_path.glob("best_*.pth")])
    assert kept == [["best_knn_top1_epoch_1.pth"], ["best_knn_top1_epoch_2.pth"], ["best_knn_top1_epoch_2.pth"],
                    ["best_knn_top1_epoch_4.pth"]]
    assert hook.metrics()["best_knn_top1"] == 40.0 and hook.state_dict()["best_ckpt"] == "best_knn_top1_epoch_4.pth"


# -- training runs -------------------------------------------------------------------------------------------
def test_iter_runner_crosses_epochs_evaluates_by_iterations_and_resumes_mid_epoch_bit_identically(
        fmnist_tiny, tmp_path):
    """10 iterations of 4 per epoch, checkpoints every 3, kNN every 4, an EMA of the weights: a crash
    after iteration 8 resumes from iter_6.pth, 2 iterations into the second epoch, and ends as the
    uninterrupted run."""
    cfg = _config(tmp_path, "iter_knn.py", f"""
        _base_ = {ITER_CONFIG!r}
        data = dict(val=dict(type='SingleViewDataset', data_source=dict(type='ParquetShards', root=None, split='test'),
                             pipeline={{{{_base_.eval_pipeline}}}}))
        workflow = [('train', 1), ('val', 1)]
        evaluation = dict(interval=4, save_best='knn_top1')
        custom_hooks = [dict(type='EMAHook', momentum=0.05, warm_up=10)]
        runner = dict(max_iters=10)
        checkpoint_config = dict(interval=3, max_keep_ckpts=0)
        log_config = dict(interval=1, hooks=[dict(type='TextLoggerHook'), dict(type='TensorboardLoggerHook')])
    """)
    whole, crashed = tmp_path / "whole", tmp_path / "crashed"
    metrics = train(cfg, fmnist_tiny, str(whole))
    assert metrics["iterations"] == 10 and metrics["checkpoint"] == str(whole / "iter_10.pth")
    assert sorted(p.name for p in whole.glob("iter_*.pth")) == ["iter_10.pth", "iter_3.pth", "iter_6.pth",
                                                                "iter_9.pth"]
    assert [p.name for p in whole.glob("best_*.pth")] == [Path(metrics["best_checkpoint"]).name]
    assert Path(metrics["best_checkpoint"]).name in ("best_knn_top1_iter_4.pth", "best_knn_top1_iter_8.pth")
    assert [(e["iter"], e["k"]) for e in metrics["evaluation"]] == [(4, 20), (8, 20)]
    assert checkpoint.newest(str(whole)) == str(whole / "iter_10.pth")  # by number, for the extract stage too
    meta = torch.load(whole / "iter_6.pth", weights_only=True)["meta"]
    assert (meta["epoch"], meta["inner_iter"], meta["iter"]) == (1, 2, 6)

    with pytest.raises(Stopped):
        train(cfg, fmnist_tiny, str(crashed), ["custom_hooks=[{'type': 'EMAHook', 'momentum': 0.05, 'warm_up': 10}, "
                                               "{'type': '_StopAfter', 'iters': 8}]"])
    resumed = train(cfg, fmnist_tiny, str(crashed))
    log = (crashed / "train.log").read_text().split("resumed from")
    assert len(log) == 2 and log[1].startswith(f" {crashed / 'iter_6.pth'} (epoch 1, iteration 6)")
    assert "iter [6/10]" not in log[1] and "iter [7/10]" in log[1]  # nothing before the checkpoint trained again

    _assert_same_state(torch.load(whole / "iter_10.pth", weights_only=True),
                       torch.load(crashed / "iter_10.pth", weights_only=True))
    assert resumed["evaluation"] == metrics["evaluation"]
    assert resumed["best_checkpoint"] == str(crashed / Path(metrics["best_checkpoint"]).name)
    assert len(list(crashed.glob("best_*.pth"))) == 1

    # TensorBoard: each iteration's loss, lr and momentum once (the crashed run's iterations 7 and 8
    # purged by the resumed writer), the cyclic schedules' values, kNN at the iterations it ran.
    ref, got = _scalars(whole), _scalars(crashed)
    assert ref == got
    assert [s for s, _ in got["train/loss"]] == list(range(1, 11))
    assert [s for s, _ in got["momentum"]] == list(range(1, 11))
    lrs = dict(got["learning_rate"])
    assert lrs[1] == pytest.approx(0.006) and lrs[5] == pytest.approx(0.06)  # the peak: 10x after int(0.4 * 10)
    # the last iteration, 5 of the 6 down to 1e-4x: the cycle spans max_iters, whatever the epochs
    assert lrs[10] == pytest.approx(0.006 * (1e-4 + 0.5 * (10 - 1e-4) * (1 + math.cos(math.pi * 5 / 6))))
    momentum = dict(got["momentum"])
    assert momentum[1] == pytest.approx(0.9) and momentum[5] == pytest.approx(0.9 * 0.85 / 0.95)  # SGD's 0.9 mirrored
    assert got["val/knn_top1"] == [(e["iter"], pytest.approx(e["knn_top1"])) for e in metrics["evaluation"]]


def test_loader_workers_resume_mid_epoch_bit_identically(fmnist_tiny, tmp_path):
    """With a loader worker the skipped batches are made again (its augmentation stream advances per batch)."""
    opts = ["runner.max_iters=6", "checkpoint_config.interval=3", "data.workers_per_gpu=1"]
    train(ITER_CONFIG, fmnist_tiny, str(tmp_path / "whole"), opts)
    resume = f"resume_from={tmp_path / 'whole' / 'iter_3.pth'}"
    train(ITER_CONFIG, fmnist_tiny, str(tmp_path / "resumed"), [*opts, resume])
    _assert_same_state(torch.load(tmp_path / "whole" / "iter_6.pth", weights_only=True),
                       torch.load(tmp_path / "resumed" / "iter_6.pth", weights_only=True))


def test_eval_config_keeps_one_best_checkpoint_writes_events_and_resumes_bit_identically(fmnist_tiny, tmp_path):
    """The EvalHook + EMAHook + TensorBoard example: kNN after each epoch on the held-out split; a crash
    2 iterations into epoch 2 resumes from epoch_1.pth (EMA weights in the model, as mmcv saves them)."""
    whole, crashed = tmp_path / "whole", tmp_path / "crashed"
    opts = ["log_config.interval=1"]
    metrics = train(EVAL_CONFIG, fmnist_tiny, str(whole), opts)
    assert [(e["epoch"], e["iter"]) for e in metrics["evaluation"]] == [(1, 4), (2, 8)]
    scores = [e["knn_top1"] for e in metrics["evaluation"]]
    assert all(0 <= s <= 100 for s in scores)
    best_epoch = 1 if scores[0] >= scores[1] else 2
    assert metrics["best_knn_top1"] == max(scores)
    assert [p.name for p in whole.glob("best_*.pth")] == [f"best_knn_top1_epoch_{best_epoch}.pth"]
    assert json.loads((whole / "train_metrics.json").read_text())["evaluation"] == metrics["evaluation"]
    best = torch.load(whole / f"best_knn_top1_epoch_{best_epoch}.pth", weights_only=True)
    assert best["meta"]["epoch"] == best_epoch and set(best) == {"meta", "state_dict", "optimizer", "scaler", "rng",
                                                                 "hooks"}

    with pytest.raises(Stopped):
        train(EVAL_CONFIG, fmnist_tiny, str(crashed), [*opts, "custom_hooks=[{'type': 'EMAHook', 'momentum': 0.01, "
                                                              "'warm_up': 100}, {'type': '_StopAfter', 'iters': 6}]"])
    resumed = train(EVAL_CONFIG, fmnist_tiny, str(crashed), opts)
    assert "resumed from" in (crashed / "train.log").read_text()
    _assert_same_state(torch.load(whole / "epoch_2.pth", weights_only=True),
                       torch.load(crashed / "epoch_2.pth", weights_only=True))
    assert resumed["evaluation"] == metrics["evaluation"]
    assert [p.name for p in crashed.glob("best_*.pth")] == [f"best_knn_top1_epoch_{best_epoch}.pth"]

    got = _scalars(crashed)
    assert got == _scalars(whole)
    assert {"train/loss", "learning_rate", "momentum", "val/knn_top1"} <= set(got)
    assert [s for s, _ in got["train/loss"]] == list(range(1, 9))
    assert [v for _, v in got["momentum"]] == [pytest.approx(0.9)] * 8  # SGD's momentum, no momentum_config
    lr = [v for _, v in got["learning_rate"]]
    assert lr[0] == pytest.approx(0.06) and lr[4] == pytest.approx(0.03 * (1 + math.cos(math.pi * 4 / 8)))
    assert got["val/knn_top1"] == [(4, pytest.approx(scores[0])), (8, pytest.approx(scores[1]))]


def test_ema_weights_equal_a_hand_computed_average_after_3_iterations(fmnist_tiny, tmp_path):
    """momentum 0.9 under warm-up 4: m_k = min(0.9, (1 + k) / (4 + k)) = 1/4, 2/5, 3/6 for k = 0, 1, 2."""
    cfg = load_config(ITER_CONFIG, ["runner.max_iters=3"])
    cfg.custom_hooks = [dict(type="EMAHook", momentum=0.9, warm_up=4), dict(type="_ParamRecorder")]
    runner = build_runner(cfg, fmnist_tiny, str(tmp_path))
    recorder = next(h for h in runner.hooks if isinstance(h, _ParamRecorder))
    runner.run()
    seen = recorder.seen  # before training, then after iterations 1, 2, 3
    assert len(seen) == 4
    final = torch.load(tmp_path / "iter_3.pth", weights_only=True)
    ema_slot = [type(h).__name__ for h in runner.hooks].index("EMAHook")
    assert final["hooks"][0][ema_slot] == {"swapped": True}  # the run ended: the model holds the averages
    for name in seen[0]:
        ema = seen[0][name].double()
        for k, m in enumerate((1 / 4, 2 / 5, 3 / 6)):
            ema = (1 - m) * ema + m * seen[k + 1][name].double()
        torch.testing.assert_close(final["state_dict"][name].double(), ema, rtol=1e-6, atol=1e-7, msg=name)
        assert torch.equal(final["state_dict"]["ema_" + name.replace(".", "_")], seen[3][name])  # swapped out
    name = "backbone.conv1.weight"  # an average, neither the first nor the last weights
    assert not torch.allclose(final["state_dict"][name], seen[3][name])
    assert not torch.allclose(final["state_dict"][name], seen[0][name])


def test_tensorboard_events_are_uploaded_beside_train_log_in_an_s3_work_dir(s3_server, fmnist_tiny, tmp_path):
    work = f"s3://{s3_server}/runtime/tensorboard"
    loggers = "log_config.hooks=[{'type': 'TextLoggerHook'}, {'type': 'TensorboardLoggerHook'}]"
    train(ITER_CONFIG, fmnist_tiny, work, ["runner.max_iters=2", "log_config.interval=1", loggers])
    names = storage.listdir(work)
    events = [n for n in names if n.startswith("events.out.tfevents.")]
    assert {"train.log", "iter_2.pth", "train_metrics.json"} <= set(names) and len(events) == 1
    storage.download(storage.join(work, events[0]), tmp_path / "tb" / events[0])
    assert [s for s, _ in _scalars(tmp_path / "tb")["train/loss"]] == [1, 2]


def test_two_process_eval_config_evaluates_once_per_epoch_and_keeps_one_best_checkpoint(fmnist_tiny, tmp_path):
    """Rank 0 extracts and votes, the other waits; the best checkpoint holds both ranks' state."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "ssl_lib.engine.train", "--config", EVAL_CONFIG, "--dataset", fmnist_tiny, "--work-dir", str(tmp_path)]
    proc = subprocess.run(cmd, env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO)), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "train_metrics.json").read_text())
    assert metrics["world_size"] == 2 and [(e["epoch"], e["iter"]) for e in metrics["evaluation"]] == [(1, 2), (2, 4)]
    best = [p.name for p in tmp_path.glob("best_*.pth")]
    assert best == [Path(metrics["best_checkpoint"]).name]
    state = torch.load(tmp_path / best[0], weights_only=True)
    assert len(state["rng"]) == 2 and len(state["hooks"]) == 2
    assert "ema_backbone_conv1_weight" in state["state_dict"]
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1  # rank 0's writer only
