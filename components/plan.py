from typing import NamedTuple

from kfp import dsl

from components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def plan_benchmarks(benchmarks: list) -> NamedTuple("Switches", [
        ("knn", bool), ("svm", bool), ("low_shot_svm", bool), ("linear", bool), ("fast_linear", bool),
        ("semi", bool), ("finetune", bool), ("detection", bool), ("segmentation", bool), ("features", bool), ("voc_features", bool),
        ("detseg_data", bool)]):
    """The `benchmarks` list -> one on/off switch per benchmark stage (and per feature pass), so that
    turning one protocol on or off changes only its own component's cache key."""
    from ssl_lib.stages.plan import plan

    return tuple(plan(benchmarks).values())
