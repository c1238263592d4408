from kfp import dsl
from kfp.dsl import Artifact, Input, Metrics, Output

from components.images import BENCHMARK_IMAGE


@dsl.component(base_image=BENCHMARK_IMAGE, install_kfp_package=False)
def knn(features: Input[Artifact], result: Output[Artifact], metrics: Output[Metrics], enabled: bool = True,
        ks: list = [10, 20, 100, 200], temperature: float = 0.07, layer: str = "avgpool", gpus: int = 0):
    """Weighted kNN (faiss) on the cached features, with the random-init and raw-pixel baselines."""
    from ssl_lib.stages.skip import skip, write_metrics

    if not enabled:
        skip(result.path, "knn", metrics.path)
        return
    from ssl_lib.stages.knn import knn as run

    out = run(features=features.path, output=result.path, ks=ks, temperature=temperature, layer=layer, gpus=gpus)
    for name, res in out["results"].items():
        for k, top1 in res["top1"].items():
            metrics.log_metric(f"{name}_top1_k{k}", round(100 * top1, 2))
    write_metrics(metrics)
