from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.images import DETSEG_IMAGE


@dsl.component(base_image=DETSEG_IMAGE, install_kfp_package=False)
def segmentation(dataset: Input[Dataset], backbone: Input[Model], result: Output[Artifact],
                 metrics: Output[Metrics], enabled: bool = True, protocol: str = "voc12aug", config: str = "",
                 iters: int = 0, baseline: bool = True, cfg_options: list = [], gpus: int = 0):
    """The seed's segmentation benchmark on MMSegmentation: FCN on VOC12 + aug (`voc12aug`) or Cityscapes
    (`cityscapes`), mIoU, from the backbone and from random init. `config` "" and `iters` 0 take the
    protocol's config for this backbone and its schedule."""
    from ssl_lib.stages.skip import skip, write_metrics

    if not enabled:
        skip(result.path, "segmentation", metrics.path)
        return
    from ssl_lib.stages.segmentation import segmentation as run

    out = run(dataset=dataset.path, backbone=backbone.path, output=result.path, protocol=protocol, config=config,
              iters=iters, baseline=baseline, cfg_options=cfg_options, gpus=gpus)
    for model, res in out["results"].items():
        for name, value in res.items():
            metrics.log_metric(f"{model}_{name}", value)
    write_metrics(metrics)
