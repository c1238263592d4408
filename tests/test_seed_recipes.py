"""Every seed ImageNet recipe the issue names is shipped, loads through its `_base_` chain and builds;
every Fashion-MNIST recipe builds too and names what it is by the seed's scheme."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import ssl_lib.engine.hooks  # noqa: F401
from ssl_lib.config import load_config
from ssl_lib.models import build_algorithm
from ssl_lib.registry import HOOKS, build

CONFIGS = Path(__file__).resolve().parents[1] / "ssl_lib" / "configs" / "selfsup"
SEED_RECIPES = [
    "mocov1/mocov1_resnet50_8xb32-steplr-200e_in1k.py",
    "mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py",
    "simclr/simclr_resnet50_8xb32-coslr-200e_in1k.py",
    "byol/byol_resnet50_8xb32-accum16-coslr-200e_in1k.py",
    "simsiam/simsiam_resnet50_8xb32-coslr-100e_in1k.py",
    "barlowtwins/barlowtwins_resnet50_8xb256-coslr-300e_in1k.py",
    "densecl/densecl_resnet50_8xb32-coslr-200e_in1k.py",
    "swav/swav_resnet50_8xb32-mcrop-2-6-coslr-200e_in1k-224-96.py",
    "npid/npid_resnet50_8xb32-steplr-200e_in1k.py",
    "odc/odc_resnet50_8xb64-steplr-440e_in1k.py",
    "deepcluster/deepcluster_resnet50_8xb64-steplr-200e_in1k.py",
    "relative_loc/relative-loc_resnet50_8xb64-steplr-70e_in1k.py",
    "rotation_pred/rotation-pred_resnet50_8xb16-steplr-70e_in1k.py",
    "mae/mae_vit-base-p16_8xb512-coslr-400e_in1k.py",
    "simmim/simmim_swin-base_16xb128-coslr-100e_in1k-192.py",
    "mocov3/mocov3_vit-small-p16_32xb128-fp16-coslr-300e_in1k.py",
    "dino/dino_resnet50_8xb64-mcrop-2-6-coslr-100e_in1k.py",
    "dino/dino_vit-small-p16_16xb64-mcrop-2-6-coslr-100e_in1k.py",
    "vicreg/vicreg_resnet50_8xb64-coslr-100e_in1k.py",
    "cae/cae_vit-base-p16_16xb128-coslr-300e_in1k.py",
]
FMNIST_RECIPES = sorted(str(p.relative_to(CONFIGS)) for p in CONFIGS.glob("*/*_fmnist.py"))
NAME = re.compile(r"^[a-z0-9-]+_(resnet\d+(-w\d+)?|vit-[a-z0-9-]+|swin-[a-z0-9-]+)_\d+xb\d+-[a-z0-9-]+-\d+(e|it)_(in1k|fmnist)[a-z0-9-]*\.py$")


def _depth(path: Path) -> int:
    """Levels of `_base_` inheritance above a config (the seed recommends at most three)."""
    text = path.read_text()
    bases = re.findall(r"'(\.\./[^']+\.py)'", text.split("_base_", 1)[1].split("]", 1)[0]) if "_base_" in text else []
    return 0 if not bases else 1 + max(_depth((path.parent / b).resolve()) for b in bases)


@pytest.mark.parametrize("recipe", SEED_RECIPES + FMNIST_RECIPES)
def test_recipe_loads_through_its_base_chain_and_builds_with_its_hooks(recipe):
    cfg = load_config(f"selfsup/{recipe}")
    model = build_algorithm(cfg.model)
    assert type(model).__name__ == cfg.model.type
    for hook in cfg.get("custom_hooks", []):
        build({k: v for k, v in hook.items() if k != "priority"}, HOOKS)
    assert NAME.match(Path(recipe).name), f"{recipe} does not follow the seed's naming scheme"
    assert _depth(CONFIGS / recipe) <= 3


def test_every_algorithm_family_has_a_fashion_mnist_recipe():
    families = {Path(r).parent.name for r in SEED_RECIPES}
    assert families <= {Path(r).parent.name for r in FMNIST_RECIPES}
