from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.images import BENCHMARK_IMAGE


@dsl.component(base_image=BENCHMARK_IMAGE, install_kfp_package=False)
def finetune(dataset: Input[Dataset], backbone: Input[Model], result: Output[Artifact], metrics: Output[Metrics],
             enabled: bool = True, config: str = "", cfg_options: list = [], epochs: int = 0, train_limit: int = 0,
             baseline: bool = False, seed: int = 0, gpus: int = 0):
    """Full fine-tuning, the protocol of the seed's masked-image-modelling algorithms: backbone + linear head
    trained with the seed's recipe (layer-wise lr decay, Mixup / CutMix, label smoothing, drop path); test
    top-1 / top-5. `config` "" takes the CPU recipe for the backbone's kind; `baseline` also fine-tunes the
    same architecture from random init; `train_limit` > 0 fine-tunes on a class-balanced subset."""
    from ssl_lib.stages.skip import skip, write_metrics

    if not enabled:
        skip(result.path, "finetune", metrics.path)
        return
    from ssl_lib.stages.finetune import finetune as run

    out = run(dataset=dataset.path, backbone=backbone.path, output=result.path, config=config,
              cfg_options=cfg_options, epochs=epochs, train_limit=train_limit, baseline=baseline, seed=seed, gpus=gpus)
    metrics.log_metric("top1", round(100 * out["top1"], 2))
    metrics.log_metric("top5", round(100 * out["top5"], 2))
    if out["baseline"]:
        metrics.log_metric("top1_random_init", round(100 * out["baseline"]["top1"], 2))
    write_metrics(metrics)
