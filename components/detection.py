from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.images import DETSEG_IMAGE


@dsl.component(base_image=DETSEG_IMAGE, install_kfp_package=False)
def detection(dataset: Input[Dataset], backbone: Input[Model], result: Output[Artifact], metrics: Output[Metrics],
              enabled: bool = True, protocol: str = "voc0712", config: str = "", iters: int = 0,
              baseline: bool = True, cfg_options: list = [], gpus: int = 0):
    """The seed's detection benchmark on MMDetection: Faster R-CNN C4 on VOC07+12 (`voc0712`, mAP and AP50)
    or Mask R-CNN FPN on COCO (`coco`, box and mask mAP / AP50 / AP75), from the backbone and from random
    init. `config` "" and `iters` 0 take the protocol's config for this backbone and its schedule."""
    from ssl_lib.stages.skip import skip, write_metrics

    if not enabled:
        skip(result.path, "detection", metrics.path)
        return
    from ssl_lib.stages.detection import detection as run

    out = run(dataset=dataset.path, backbone=backbone.path, output=result.path, protocol=protocol, config=config,
              iters=iters, baseline=baseline, cfg_options=cfg_options, gpus=gpus)
    for model, res in out["results"].items():
        for name, value in res.items():
            metrics.log_metric(f"{model}_{name}", value)
    write_metrics(metrics)
