import subprocess
import sys
import textwrap

import pytest

from ssl_lib.config import load_config, parse_cfg_option
from ssl_lib.errors import ConfigError
from ssl_lib.registry import ALGORITHMS, build


def _write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_base_inheritance_delete_and_base_reference(tmp_path):
    _write(tmp_path / "base.py", """
        num_classes = 10
        model = dict(type='MoCo', neck=dict(type='MoCoV2Neck', in_channels=2048, num_layers=2))
        optimizer = dict(type='SGD', lr=0.03, momentum=0.9)
    """)
    cfg_path = _write(tmp_path / "child.py", """
        _base_ = './base.py'
        model = dict(neck=dict(_delete_=True, type='LinearNeck', in_channels=512))
        optimizer = dict(lr=0.3)
        head = dict(num_classes={{_base_.num_classes}})
    """)
    cfg = load_config(str(cfg_path))
    assert cfg.model.neck.to_dict() == {"type": "LinearNeck", "in_channels": 512}
    assert cfg.optimizer.lr == 0.3 and cfg.optimizer.momentum == 0.9
    assert cfg.head.num_classes == 10


def test_cfg_options_override_nested_values_with_literals(tmp_path):
    cfg = load_config("selfsup/mocov2/mocov2_resnet18-w16_1xb64-coslr-10e_fmnist.py",
                      ["runner.max_epochs=3", "model.backbone.out_indices=[3,4]", "optimizer.lr=0.1",
                       "model.backbone.norm_cfg.type=SyncBN"])
    assert cfg.runner.max_epochs == 3
    assert list(cfg.model.backbone.out_indices) == [3, 4]
    assert cfg.optimizer.lr == 0.1
    assert cfg.model.backbone.norm_cfg.type == "SyncBN"
    # the shipped config inherits the seed's MoCo v2 model base
    assert cfg.model.type == "MoCo" and cfg.model.neck.type == "MoCoV2Neck"


@pytest.mark.parametrize("option", ["runner.max_epochs", "optimizer.lr=[0.1", "=3", "a..b=1", "x=(1,"])
def test_malformed_cfg_option_is_rejected_naming_it(option):
    with pytest.raises(ConfigError) as err:
        parse_cfg_option(option)
    assert "--cfg-options" in str(err.value)


def test_custom_imports_register_a_user_backbone(tmp_path, monkeypatch):
    _write(tmp_path / "my_backbone.py", """
        import torch
        from ssl_lib.registry import BACKBONES

        @BACKBONES.register_module()
        class TinyUserNet(torch.nn.Module):
            def __init__(self, width=4):
                super().__init__()
                self.conv = torch.nn.Conv2d(3, width, 3)
    """)
    cfg_path = _write(tmp_path / "cfg.py", """
        custom_imports = dict(imports=['my_backbone'], allow_failed_imports=False)
        backbone = dict(type='TinyUserNet', width=6)
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = load_config(str(cfg_path))
    from ssl_lib.registry import BACKBONES
    assert build(cfg.backbone, BACKBONES).conv.out_channels == 6


def test_unknown_type_names_the_type_and_registry():
    with pytest.raises(ConfigError, match="unknown type 'NoSuchAlgo' in the algorithm registry"):
        build(dict(type="NoSuchAlgo"), ALGORITHMS)


def test_missing_config_file_is_one_clear_error():
    with pytest.raises(ConfigError, match="config file not found: 'nope.py'"):
        load_config("nope.py")


def test_stage_cli_reports_bad_cfg_option_in_one_line_and_exits_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ssl_lib.stages.pretrain", "--config",
         "selfsup/mocov2/mocov2_resnet18-w16_1xb64-coslr-10e_fmnist.py", "--dataset", str(tmp_path),
         "--output", str(tmp_path / "out"), "--cfg-options", "optimizer.lr=[0.1"],
        capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "optimizer.lr" in lines[0]
