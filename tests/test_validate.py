"""Bad configs are named before anything heavy: every problem with its key path and value, exit 2,
before a dataset is read, a work dir made or a model built."""
from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ssl_lib.config import CONFIG_ROOT, load_config
from ssl_lib.engine import validate
from ssl_lib.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
MOCO = "selfsup/mocov2/mocov2_resnet18-w16_1xb64-coslr-10e_fmnist.py"
SWAV = "selfsup/swav/swav_resnet18-w16_1xb64-mcrop-2-4-coslr-10e_fmnist.py"
SIMCLR = "selfsup/simclr/simclr_resnet18-w16_1xb64-coslr-10e_fmnist.py"
ODC = "selfsup/odc/odc_resnet18-w16_1xb64-steplr-10e_fmnist.py"
ROTATION = "selfsup/rotation_pred/rotation-pred_resnet18-w16_1xb64-steplr-3e_fmnist.py"
EVAL = "selfsup/mocov2/mocov2_resnet18-w8_1xb16-coslr-ema-knn-2e_fmnist.py"  # EvalHook, EMAHook, TensorBoard
ITERS = "selfsup/mocov2/mocov2_resnet18-w8_1xb16-cycliclr-200it_fmnist.py"  # IterBasedRunner, cyclic policies
SHIPPED = sorted(p for p in (CONFIG_ROOT / "selfsup").glob("*/*.py") if p.parent.name != "_base_")
TINY = sorted((REPO / "tests" / "configs").glob("*.py"))


def bad(options: str, prefix: str, why: str, config: str = MOCO, world_size: int = 1):
    """One malformed setting: `options` (space-separated --cfg-options) must give exactly one problem,
    starting `<key.path> = <value>:` (`prefix`) and saying `why`."""
    return pytest.param(config, options.split(" ") if options else [], world_size, prefix, why,
                        id=f"{Path(config).stem.split('_')[0]}:{options or f'world_size={world_size}'}")


BAD_CONFIGS = [
    # runner
    bad("runner.max_epochs=-1", "runner.max_epochs = -1:", "positive int"),
    bad("runner.max_epochs=0", "runner.max_epochs = 0:", "positive int"),
    bad("runner.max_epochs=2.5", "runner.max_epochs = 2.5:", "positive int"),
    bad("runner.max_epochs=ten", "runner.max_epochs = 'ten':", "positive int"),
    bad("runner.type=EpochRunner", "runner.type = 'EpochRunner':", "did you mean 'EpochBasedRunner'?"),
    bad("runner.max_iters=100", "runner.max_iters = 100:", "set runner.max_epochs only"),
    bad("runner.max_epoch=3", "runner.max_epoch = 3:", "did you mean 'max_epochs'?"),
    bad("runner.max_iters=0", "runner.max_iters = 0:", "positive int", config=ITERS),
    bad("runner.max_epochs=2", "runner.max_epochs = 2:", "set runner.max_iters only", config=ITERS),
    # data
    bad("data.samples_per_gpu=0", "data.samples_per_gpu = 0:", "positive int"),
    bad("data.samples_per_gpu=-4", "data.samples_per_gpu = -4:", "positive int"),
    bad("data.samples_per_gpu=64.0", "data.samples_per_gpu = 64.0:", "positive int"),
    bad("data.workers_per_gpu=-1", "data.workers_per_gpu = -1:", "int >= 0"),
    bad("data.sample_per_gpu=32", "data.sample_per_gpu = 32:", "did you mean 'samples_per_gpu'?"),
    bad("data.train.type=MultiViewDatset", "data.train.type = 'MultiViewDatset':", "did you mean 'MultiViewDataset'?"),
    bad("data.train.data_source.type=ParquetShard", "data.train.data_source.type = 'ParquetShard':",
        "did you mean 'ParquetShards'?"),
    bad("data.train.data_source.type=FashionMNIST", "data.train.data_source.type = 'FashionMNIST':", "takes no `root`"),
    bad("data.train.pipelines.0.0.type=RandomResizeCrop", "data.train.pipelines.0.0.type = 'RandomResizeCrop':",
        "did you mean 'RandomResizedCrop'?"),
    bad("data.train.pipelines.0.0.scal=[0.2,1.0]", "data.train.pipelines.0.0.scal = [0.2, 1.0]:",
        "did you mean 'scale'?"),
    bad("data.train.num_views=[3]", "data.train.num_views = [3]:", "MoCo needs 2 views per sample"),
    bad("data.train.num_views=[1,1]", "data.train.num_views = [1, 1]:", "one pipeline per entry"),
    bad("data.train.pipeline.0.type=ToTensr", "data.train.pipeline.0.type = 'ToTensr':", "did you mean 'ToTensor'?",
        config=ROTATION),
    bad("data.train.type=MultiViewDataset", "data.train.type = 'MultiViewDataset':", "ODC trains on DeepClusterDataset",
        config=ODC),
    # model
    bad("model.type=MoCov2", "model.type = 'MoCov2':", "did you mean 'MoCo'?"),
    bad("model.queue_len=1000", "model.queue_len = 1000:", "not divisible by the global batch size 64"),
    bad("", "model.queue_len = 1024:", "not divisible by the global batch size 192", world_size=3),
    bad("model.queue_len=0", "model.queue_len = 0:", "positive int"),
    bad("model.feat_dim=64", "model.feat_dim = 64:", "set model.feat_dim=128"),
    bad("model.momentun=0.9", "model.momentun = 0.9:", "did you mean 'momentum'?"),
    bad("model.backbone.depth=19", "model.backbone.depth = 19:", "not a ResNet depth"),
    bad("model.backbone.deph=18", "model.backbone.deph = 18:", "ResNet takes no 'deph'"),
    bad("model.backbone.norm_cfg.type=GN", "model.backbone.norm_cfg.type = 'GN':", "not a 2d norm layer"),
    bad("model.neck.type=NoSuchNeck", "model.neck.type = 'NoSuchNeck':", "not a registered neck"),
    bad("model.neck.hid_channel=64", "model.neck.hid_channel = 64:", "did you mean 'hid_channels'?"),
    bad("data.samples_per_gpu=1", "data.samples_per_gpu = 1:", "global batch of 1", config=SIMCLR),
    bad("data.train.num_views=[2,2]", "data.train.num_views = [2, 2]:", "model.head.num_crops=[2, 4] sums to 6",
        config=SWAV),
    bad("data.samples_per_gpu=32", "custom_hooks.0.batch_size = 64:", "data.samples_per_gpu is 32", config=SWAV),
    bad("custom_hooks.0.feat_dim=32", "custom_hooks.0.feat_dim = 32:", "model.head.feat_dim is 64", config=SWAV),
    bad("custom_hooks.0.init_memory=False", "custom_hooks = [", "needs init_memory=True", config=ODC),
    # optimizer
    bad("optimizer.type=SDG", "optimizer.type = 'SDG':", "did you mean 'SGD'?"),
    bad("optimizer.lr=0", "optimizer.lr = 0:", "> 0"),
    bad("optimizer.lr=-0.1", "optimizer.lr = -0.1:", "> 0"),
    bad("optimizer.weight_decay=-1e-4", "optimizer.weight_decay = -0.0001:", ">= 0"),
    bad("optimizer.momentum=1.0", "optimizer.momentum = 1.0:", "in [0, 1)"),
    bad("optimizer.constructor=TransformerFinetuneConstrutor optimizer.layer_decay=0.65",
        "optimizer.constructor = 'TransformerFinetuneConstrutor':", "did you mean 'TransformerFinetuneConstructor'"),
    bad("optimizer.layer_decay=0.65", "optimizer.constructor = 'DefaultOptimizerConstructor':",
        "TransformerFinetuneConstructor and optimizer.layer_decay go together"),
    bad("optimizer.constructor=TransformerFinetuneConstructor optimizer.layer_decay=1.5",
        "optimizer.layer_decay = 1.5:", "in (0, 1]"),
    bad("optimizer.momentun=0.9", "optimizer.momentun = 0.9:", "did you mean 'momentum'?"),
    bad("optimizer.paramwise_options={'bias':{'decay_mult':0.0}}", "optimizer.paramwise_options.bias.decay_mult = 0.0:",
        "not an option of SGD"),
    bad("optimizer.paramwise_options={'(':{'weight_decay':0.0}}", "optimizer.paramwise_options.( = '(':",
        "not a regular expression"),
    bad("optimizer_config.update_interval=0", "optimizer_config.update_interval = 0:", "positive int"),
    bad("optimizer_config.grad_clip={'max_norm':-1}", "optimizer_config.grad_clip.max_norm = -1:", "> 0"),
    bad("fp16.loss_scale=-1", "fp16.loss_scale = -1:", "'dynamic' or a positive number"),
    # schedules
    bad("lr_config.policy=OneCycle", "lr_config.policy = 'OneCycle':", "not a policy"),
    bad("lr_config.policy=step lr_config.step=[8,6]", "lr_config.step = [8, 6]:", "strictly ascending"),
    bad("lr_config.min_lr_ratio=0.1", "lr_config.min_lr_ratio = 0.1:", "lr_config.min_lr=0.0 is set too"),
    bad("lr_config.warmup=cosine", "lr_config.warmup = 'cosine':", "'linear', 'constant' or 'exp'"),
    bad("lr_config.warmup=linear lr_config.warmup_ratio=0", "lr_config.warmup_ratio = 0:", "in (0, 1]"),
    bad("lr_config.policy=cyclic lr_config.step_ratio_up=1.5", "lr_config.step_ratio_up = 1.5:", "in [0, 1)"),
    bad("lr_config.cyclic_times=300", "lr_config.cyclic_times = 300:", "more cycles than the 200 iterations",
        config=ITERS),
    bad("momentum_config.anneal_strategy=cosine", "momentum_config.anneal_strategy = 'cosine':", "cos, linear",
        config=ITERS),
    bad("momentum_config={'policy':'CosineAnnealing'}", "momentum_config.min_momentum = <missing>:",
        "min_momentum or min_momentum_ratio"),
    bad("momentum_config={'policy':'Linear'}", "momentum_config.policy = 'Linear':", "not a policy"),
    # runtime and hooks
    bad("checkpoint_config.interval=0", "checkpoint_config.interval = 0:", "positive int"),
    bad("checkpoint_config.max_keep_ckpts=-1", "checkpoint_config.max_keep_ckpts = -1:", "int >= 0"),
    bad("checkpoint_config.intervall=2", "checkpoint_config.intervall = 2:", "did you mean 'interval'?"),
    bad("log_config.interval=0", "log_config.interval = 0:", "positive int"),
    bad("custom_hooks=[{'type':'NoSuchHook'}]", "custom_hooks.0.type = 'NoSuchHook':", "not a registered hook"),
    bad("custom_hooks=[{'type':'DenseCLHook','start_iter':5}]", "custom_hooks.0.start_iter = 5:",
        "did you mean 'start_iters'?"),
    bad("custom_hooks=[{'type':'DenseCLHook','priority':'SOMETIMES'}]", "custom_hooks.0.priority = 'SOMETIMES':",
        "0..100 or one of HIGHEST"),
    bad("custom_hooks=5", "custom_hooks = 5:", "list of hook dicts"),
    bad("custom_hooks.0.extractor.pipeline.0.type=ToTensr", "custom_hooks.0.extractor.pipeline.0.type = 'ToTensr':",
        "did you mean 'ToTensor'?", config=ODC),
    bad("custom_hooks.0.clustering.type=KMeans", "custom_hooks.0.clustering.type = 'KMeans':",
        "did you mean 'Kmeans'?", config=ODC),
    bad("custom_hooks.0.warmup=10", "custom_hooks.0.warmup = 10:", "EMAHook takes no 'warmup'; did you mean 'warm_up'?",
        config=EVAL),
    bad("log_config.hooks.1.type=TensorBoardLoggerHook", "log_config.hooks.1.type = 'TensorBoardLoggerHook':",
        "did you mean 'TensorboardLoggerHook'?", config=EVAL),
    bad("evaluation.interval=0", "evaluation.interval = 0:", "positive int", config=EVAL),
    bad("evaluation.intervals=2", "evaluation.intervals = 2:", "did you mean 'interval'?", config=EVAL),
    bad("evaluation.save_best=top1", "evaluation.save_best = 'top1':", "'auto'", config=EVAL),
    bad("workflow=[('train',1)]", "evaluation = {", "no 'val' phase runs it", config=EVAL),
    bad("workflow=[('train',1),('val',1)]", "workflow = [('train', 1), ('val', 1)]:", "set data.val"),
    bad("workflow=[('val',1)]", "workflow = [('val', 1)]:", "must be [('train', 1)]", config=EVAL),
    bad("seed=-1", "seed = -1:", "int >= 0"),
    bad("deterministic=yes", "deterministic = 'yes':", "True or False"),
    # top-level keys
    bad("lr_confg.policy=step", "lr_confg = {'policy': 'step'}:", "did you mean 'lr_config'?"),
    bad("optimzer.lr=0.1", "optimzer = {'lr': 0.1}:", "did you mean 'optimizer'?"),
    bad("load_from=x.pth", "load_from = 'x.pth':", "the engine does not read it"),
]


@pytest.mark.parametrize("config, options, world_size, prefix, why", BAD_CONFIGS)
def test_each_bad_setting_is_one_problem_naming_its_key_and_value(config, options, world_size, prefix, why):
    found = validate.problems(load_config(config, options), world_size=world_size)
    assert len(found) == 1, found
    assert found[0].startswith(prefix) and why in found[0], found[0]


def test_the_table_has_more_than_thirty_distinct_settings():
    assert len({(p.values[0], tuple(p.values[1]), p.values[2]) for p in BAD_CONFIGS}) >= 30


@pytest.mark.parametrize("config", SHIPPED + TINY, ids=lambda p: p.stem)
def test_every_shipped_and_test_config_validates_clean(config):
    assert validate.problems(load_config(str(config))) == []


def _leaves(node, path=()):
    """Every key path of a config dict (into lists too, not into tuples, which cannot be set)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*path, key)
        yield from _leaves(value, (*path, key))


@pytest.mark.parametrize("config", [MOCO, SWAV, EVAL])
def test_a_wrong_value_anywhere_is_reported_not_raised(config):
    base = load_config(config).to_dict()
    for path in _leaves(base):
        for value in (None, "x", [1, "a"], {}):
            cfg = copy.deepcopy(base)
            node = cfg
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
            assert all(isinstance(p, str) for p in validate.problems(cfg)), (path, value)


def test_every_problem_is_reported_at_once_one_per_line():
    options = ["runner.max_epochs=-1", "data.samples_per_gpu=0", "lr_config.policy=OneCycle", "model.queue_len=0",
               "lr_confg.policy=step"]
    with pytest.raises(ConfigError) as err:
        validate.check(load_config(MOCO, options))
    lines = str(err.value).splitlines()
    assert lines[0] == "5 problems in the config:"
    assert sorted(line.strip().split(" = ")[0] for line in lines[1:]) == [
        "data.samples_per_gpu", "lr_confg", "lr_config.policy", "model.queue_len", "runner.max_epochs"]


def test_pretrain_stage_exits_2_on_a_bad_config_before_reading_the_dataset(tmp_path, monkeypatch, capsys):
    from ssl_lib.stages._cli import run_cli
    from ssl_lib.stages.pretrain import build_parser, pretrain

    monkeypatch.setenv("SSL_WORK_ROOT", str(tmp_path / "root"))
    for option, message in [
        ("runner.max_epochs=-1", "runner.max_epochs = -1: must be a positive int"),
        ("data.samples_per_gpu=0", "data.samples_per_gpu = 0: must be a positive int"),
        ("lr_config.policy=OneCycle", "lr_config.policy = 'OneCycle': not a policy"),
        ("model.queue_len=1000", "model.queue_len = 1000: not divisible by the global batch size 128"),
    ]:
        argv = ["--config", MOCO, "--dataset", str(tmp_path / "no-such-dataset"), "--output", str(tmp_path / "out"),
                "--nproc", "2", "--cfg-options", option]
        assert run_cli(build_parser(), pretrain, argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {message}"), err
    # no work root, work dir or output (the output's lock sits beside it, hidden)
    assert sorted(os.listdir(tmp_path)) == [".out.lock"]


def test_pretrain_module_cli_names_the_config_error_not_the_missing_dataset(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ssl_lib.stages.pretrain", "--config", MOCO, "--dataset", str(tmp_path / "nope"),
         "--output", str(tmp_path / "out"), "--work-dir", str(tmp_path / "work"),
         "--cfg-options", "runner.max_epochs=-1", "data.samples_per_gpu=0"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: 2 problems in the config:",
                                                "  runner.max_epochs = -1: must be a positive int",
                                                "  data.samples_per_gpu = 0: must be a positive int"]
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists()


def test_training_entry_point_validates_before_reading_the_dataset(tmp_path, capsys):
    from ssl_lib.engine.train import main

    argv = ["--config", MOCO, "--dataset", str(tmp_path / "nope"), "--work-dir", str(tmp_path / "work"),
            "--cfg-options", "model.queue_len=1000"]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("error: model.queue_len = 1000: not divisible")
    assert not (tmp_path / "work").exists()


def _print_config():
    spec = importlib.util.spec_from_file_location("print_config", REPO / "tools" / "misc" / "print_config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_print_config_validate_says_config_ok_or_lists_the_problems_with_exit_2(capsys):
    tool = _print_config()
    assert tool.main([MOCO, "--validate"]) == 0
    assert capsys.readouterr().out.strip() == "config OK"
    assert tool.main([MOCO, "--validate", "--world-size", "3"]) == 2
    assert "model.queue_len = 1024: not divisible by the global batch size 192" in capsys.readouterr().err
    assert tool.main([MOCO, "--cfg-options", "runner.max_epochs=-1"]) == 0  # printing does not validate
    assert "max_epochs=-1" in capsys.readouterr().out
    proc = subprocess.run([sys.executable, "tools/misc/print_config.py", MOCO, "--validate", "--cfg-options",
                           "runner.max_epochs=-1", "checkpoint_config.interval=0"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == ["error: 2 problems in the config:",
                                        "  runner.max_epochs = -1: must be a positive int",
                                        "  checkpoint_config.interval = 0: must be a positive int"]
