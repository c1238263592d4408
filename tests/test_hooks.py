"""Hooks: the seed's priority order, custom_hooks with priority, a user's hook through custom_imports,
hook state kept across a resume."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch

from ssl_lib.engine.hooks import Hook, get_priority
from ssl_lib.engine.runner import build_hooks
from ssl_lib.engine.train import train
from ssl_lib.errors import ConfigError
from ssl_lib.registry import HOOKS

TINY_CONFIG = str(Path(__file__).parent / "configs" / "mocov2_resnet18-w8_1xb16-coslr-2e_fmnist.py")


@HOOKS.register_module()
class _NamedHook(Hook):
    def __init__(self, name: str):
        self.name = name


def test_hooks_run_in_the_seeds_priority_order_builtins_first_among_equals():
    hooks = build_hooks([
        dict(type="_NamedHook", name="low", priority="LOW"),
        dict(type="_NamedHook", name="default"),  # NORMAL, after the built-in checkpoint hook
        dict(type="_NamedHook", name="highest", priority="HIGHEST"),
        dict(type="_NamedHook", name="forty-five", priority=45),
        dict(type="_NamedHook", name="lowest", priority="lowest"),
    ])
    names = [getattr(h, "name", type(h).__name__) for h in hooks]
    assert names == ["highest", "LrUpdaterHook", "OptimizerHook", "forty-five", "CheckpointHook", "default",
                     "low", "LoggerHook", "lowest"]


@pytest.mark.parametrize("priority", ["SOMETIMES", 101, -1, 2.5])
def test_an_unknown_hook_priority_is_a_config_error_naming_the_hook(priority):
    with pytest.raises(ConfigError, match=r"custom_hooks\[0\] \(_NamedHook\): hook priority"):
        build_hooks([dict(type="_NamedHook", name="x", priority=priority)])


def test_priority_names_are_the_seeds_numbers():
    assert [get_priority(p) for p in ("HIGHEST", "VERY_HIGH", "HIGH", "ABOVE_NORMAL", "NORMAL", "BELOW_NORMAL",
                                      "LOW", "VERY_LOW", "LOWEST")] == [0, 10, 30, 40, 50, 60, 70, 90, 100]


USER_HOOK = '''
    import json
    from ssl_lib.engine.hooks import Hook
    from ssl_lib.registry import HOOKS


    @HOOKS.register_module()
    class RecordingHook(Hook):
        """Writes what it sees; its call count is state that must survive a resume."""

        def __init__(self, out, tag):
            self.out, self.tag, self.calls = out, tag, 0

        def _write(self, event, runner):
            self.calls += 1
            with open(self.out, "a") as f:
                f.write(json.dumps(dict(tag=self.tag, event=event, epoch=runner.epoch, iter=runner.global_iter,
                                        lr=runner.optimizer.param_groups[0]["lr"], calls=self.calls)) + "\\n")

        def before_run(self, runner):
            self._write("before_run", runner)

        def before_train_iter(self, runner):
            self._write("before_train_iter", runner)

        def after_train_iter(self, runner):
            weight = float(next(runner.algorithm.backbone.parameters()).detach().double().sum())
            with open(self.out, "a") as f:
                f.write(json.dumps(dict(tag=self.tag, event="after_train_iter", iter=runner.global_iter,
                                        weight=weight)) + "\\n")

        def state_dict(self):
            return dict(calls=self.calls)

        def load_state_dict(self, state):
            self.calls = state["calls"]
'''


def test_a_users_hook_from_custom_imports_runs_at_its_priority_and_keeps_its_state_across_resume(
        fmnist_tiny, tmp_path, monkeypatch):
    (tmp_path / "my_hooks.py").write_text(textwrap.dedent(USER_HOOK))
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "events.jsonl"
    cfg = tmp_path / "cfg.py"
    cfg.write_text(textwrap.dedent(f"""
        _base_ = {TINY_CONFIG!r}
        custom_imports = dict(imports=['my_hooks'], allow_failed_imports=False)
        custom_hooks = [
            dict(type='RecordingHook', out={str(out)!r}, tag='first', priority='HIGHEST'),
            dict(type='RecordingHook', out={str(out)!r}, tag='normal'),
        ]
        optimizer = dict(lr=0.1)
        lr_config = dict(policy='Step', step=[1], gamma=0.5, by_epoch=False)
        runner = dict(max_epochs=2)
    """))
    train(str(cfg), fmnist_tiny, str(tmp_path / "work"), ["runner.max_epochs=1"])
    events = [json.loads(line) for line in out.read_text().splitlines()]
    iters = [e for e in events if e["event"] == "before_train_iter"]
    # iteration 1 is the first at lr 0.05: the HIGHEST hook runs before the LR update, the NORMAL one after
    first = {e["iter"]: e["lr"] for e in iters if e["tag"] == "first"}
    normal = {e["iter"]: e["lr"] for e in iters if e["tag"] == "normal"}
    assert first[1] == pytest.approx(0.1) and normal[1] == pytest.approx(0.05)
    # after an iteration, the HIGHEST hook runs before the optimizer step, the NORMAL one after it
    weight = {(e["tag"], e["iter"]): e["weight"] for e in events if e["event"] == "after_train_iter"}
    assert weight[("first", 1)] == weight[("normal", 0)] != weight[("normal", 1)]

    calls_after_epoch_1 = max(e["calls"] for e in iters if e["tag"] == "normal")
    state = torch.load(tmp_path / "work" / "epoch_1.pth", weights_only=True)
    # rank 0's hooks in priority order: first, LrUpdater, Optimizer, Checkpoint, normal, Logger
    assert state["hooks"][0][4] == dict(calls=calls_after_epoch_1)
    out.write_text("")
    train(str(cfg), fmnist_tiny, str(tmp_path / "work"), ["runner.max_epochs=2"])
    resumed = [json.loads(line) for line in out.read_text().splitlines()]
    assert resumed[0]["event"] == "before_run" and resumed[0]["epoch"] == 1
    normal_run = [e for e in resumed if e["tag"] == "normal"]
    assert normal_run[0]["calls"] == calls_after_epoch_1 + 1
