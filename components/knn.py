from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.images import BENCHMARK_IMAGE


@dsl.component(base_image=BENCHMARK_IMAGE, install_kfp_package=False)
def knn(dataset: Input[Dataset], backbone: Input[Model], result: Output[Artifact], metrics: Output[Metrics],
        ks: list = [10, 20, 100, 200], temperature: float = 0.07, baselines: bool = True, gpus: int = 0):
    """Weighted kNN (faiss) of the frozen backbone, with random-init and raw-pixel baselines."""
    import json

    from ssl_lib.stages.knn import knn as run

    out = run(dataset=dataset.path, backbone=backbone.path, output=result.path, ks=ks,
              temperature=temperature, baselines=baselines, gpus=gpus)
    for name, res in out["results"].items():
        for k, top1 in res["top1"].items():
            metrics.log_metric(f"{name}_top1_k{k}", round(100 * top1, 2))
    # kfp.local treats an output artifact without a file as a cache miss; the metrics file gives it one.
    with open(metrics.path, "w") as f:
        json.dump(metrics.metadata, f)
