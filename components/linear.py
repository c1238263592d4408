from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.images import BENCHMARK_IMAGE


@dsl.component(base_image=BENCHMARK_IMAGE, install_kfp_package=False)
def linear(dataset: Input[Dataset], backbone: Input[Model], result: Output[Artifact], metrics: Output[Metrics],
           enabled: bool = True,
           config: str = "benchmarks/classification/fmnist/resnet_mhead_1xb64-steplr-2e_fmnist-2k.py",
           cfg_options: list = [], epochs: int = 0, seed: int = 0, gpus: int = 0):
    """The seed's linear evaluation: heads on feat1..feat5 and avgpool of the frozen backbone, trained on
    augmented images (SGD, the config's schedule); top-1 / top-5 per head."""
    from ssl_lib.stages.skip import skip, write_metrics

    if not enabled:
        skip(result.path, "linear", metrics.path)
        return
    from ssl_lib.stages.linear import linear as run

    out = run(dataset=dataset.path, backbone=backbone.path, output=result.path, config=config,
              cfg_options=cfg_options, epochs=epochs, seed=seed, gpus=gpus)
    for name, res in out["heads"].items():
        metrics.log_metric(f"{name}_top1", round(100 * res["top1"], 2))
    write_metrics(metrics)
