from kfp import dsl
from kfp.dsl import Artifact, Input, Metrics, Output

from components.images import BENCHMARK_IMAGE


@dsl.component(base_image=BENCHMARK_IMAGE, install_kfp_package=False)
def low_shot_svm(features: Input[Artifact], result: Output[Artifact], metrics: Output[Metrics], enabled: bool = True,
                 layers: list = [], ks: list = [1, 2, 4, 8, 16, 32, 64, 96], samples: int = 5, costs: list = [],
                 seed: int = 0):
    """The seed's low-shot SVM protocol on the cached features: mAP per k (mean and std over samples)."""
    from ssl_lib.stages.skip import skip, write_metrics

    if not enabled:
        skip(result.path, "low_shot_svm", metrics.path)
        return
    from ssl_lib.stages.low_shot_svm import low_shot_svm as run

    out = run(features=features.path, output=result.path, layers=layers or None, ks=ks, samples=samples,
              costs=costs or None, seed=seed)
    for k, res in out["layers"][out["best_layer"]]["best_cost"].items():
        metrics.log_metric(f"mAP_k{k}", round(100 * res["mean"], 2))
    write_metrics(metrics)
