from kfp import dsl
from kfp.dsl import Artifact, Input, Metrics, Output

from components.images import BENCHMARK_IMAGE


@dsl.component(base_image=BENCHMARK_IMAGE, install_kfp_package=False)
def fast_linear(features: Input[Artifact], result: Output[Artifact], metrics: Output[Metrics], enabled: bool = True,
                lrs: list = [0.01, 0.03, 0.1, 0.3, 1.0], weight_decays: list = [0.0, 1e-5, 1e-4, 1e-3],
                epochs: int = 10, val_fraction: float = 0.1, seed: int = 0, gpus: int = 0):
    """The fast linear protocol on the cached features: every layer x lr x weight decay at once, chosen on
    a held-out part of the train split; the chosen setting's test top-1 / top-5, per layer and overall."""
    from ssl_lib.stages.skip import skip, write_metrics

    if not enabled:
        skip(result.path, "fast_linear", metrics.path)
        return
    from ssl_lib.stages.fast_linear import fast_linear as run

    out = run(features=features.path, output=result.path, lrs=lrs, weight_decays=weight_decays, epochs=epochs,
              val_fraction=val_fraction, seed=seed, gpus=gpus)
    metrics.log_metric("top1", round(100 * out["chosen"]["test_top1"], 2))
    for layer, row in out["per_layer"].items():
        metrics.log_metric(f"{layer}_top1", round(100 * row["test_top1"], 2))
    write_metrics(metrics)
