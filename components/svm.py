from kfp import dsl
from kfp.dsl import Artifact, Input, Metrics, Output

from components.images import BENCHMARK_IMAGE


@dsl.component(base_image=BENCHMARK_IMAGE, install_kfp_package=False)
def svm(features: Input[Artifact], result: Output[Artifact], metrics: Output[Metrics], enabled: bool = True,
        layers: list = [], costs: list = [], folds: int = 3):
    """The seed's VOC07 SVM protocol on the cached features: mAP per layer and the best layer."""
    from ssl_lib.stages.skip import skip, write_metrics

    if not enabled:
        skip(result.path, "svm_voc07", metrics.path)
        return
    from ssl_lib.stages.svm import svm as run

    out = run(features=features.path, output=result.path, layers=layers or None, costs=costs or None, folds=folds)
    for layer, res in out["layers"].items():
        metrics.log_metric(f"mAP_{layer}", round(100 * res["mAP"], 2))
    write_metrics(metrics)
