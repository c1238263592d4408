"""Which benchmark stages a run computes: the pipelines' `benchmarks` list turned into one switch per
stage, so that each component's cache key changes only when its own protocol is switched."""
from __future__ import annotations

from ..errors import ConfigError

PROTOCOLS = ("knn", "svm", "low_shot_svm", "linear", "fast_linear", "semi", "finetune", "detection", "segmentation")
# feature passes and prepared datasets, and the protocols that read them
FEATURE_READERS = {"features": ("knn", "fast_linear"), "voc_features": ("svm", "low_shot_svm"),
                   "detseg_data": ("detection", "segmentation")}


def plan(benchmarks: list[str]) -> dict[str, bool]:
    unknown = sorted(set(benchmarks) - set(PROTOCOLS))
    if unknown:
        raise ConfigError(f"benchmarks: unknown protocol(s) {unknown}; choose from {list(PROTOCOLS)}")
    if not benchmarks:
        raise ConfigError(f"benchmarks: the list is empty; choose from {list(PROTOCOLS)}")
    switches = {name: name in benchmarks for name in PROTOCOLS}
    switches.update({name: any(switches[p] for p in readers) for name, readers in FEATURE_READERS.items()})
    return switches
