from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.images import BENCHMARK_IMAGE


@dsl.component(base_image=BENCHMARK_IMAGE, install_kfp_package=False)
def semi(dataset: Input[Dataset], backbone: Input[Model], result: Output[Artifact], metrics: Output[Metrics],
         enabled: bool = True,
         config: str = "benchmarks/classification/fmnist/resnet18-w16_semi_1xb64-steplr-5e_fmnist.py",
         cfg_options: list = [], fractions: list = [], lrs: list = [], head_lr_mults: list = [], epochs: int = 0,
         subset_files: list = [], seed: int = 0, gpus: int = 0):
    """The seed's semi-supervised protocol: backbone + linear head fine-tuned on labelled fractions of the
    train split (list files `["0.01=<uri>", ...]`, else class-balanced) over lr x head lr multiplier;
    top-1 / top-5 of every setting and the best. Empty lists and 0 take the config's values."""
    from ssl_lib.stages.skip import skip, write_metrics

    if not enabled:
        skip(result.path, "semi", metrics.path)
        return
    from ssl_lib.stages.semi import semi as run

    out = run(dataset=dataset.path, backbone=backbone.path, output=result.path, fractions=fractions, lrs=lrs,
              head_lr_mults=head_lr_mults, epochs=epochs, subset_files=subset_files, config=config,
              cfg_options=cfg_options, seed=seed, gpus=gpus)
    for fraction, res in out["fractions"].items():
        metrics.log_metric(f"top1_{100 * float(fraction):g}pct", round(100 * res["best"]["top1"], 2))
        metrics.log_metric(f"top5_{100 * float(fraction):g}pct", round(100 * res["best"]["top5"], 2))
    write_metrics(metrics)
