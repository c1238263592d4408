from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components.images import BENCHMARK_IMAGE


@dsl.component(base_image=BENCHMARK_IMAGE, install_kfp_package=False)
def features(dataset: Input[Dataset], backbone: Input[Model], result: Output[Artifact], enabled: bool = True,
             layers: list = [], baselines: bool = True, gpus: int = 0):
    """feat1..feat5 + avgpool of the frozen backbone (and the baselines' avgpool) for train and test,
    once, for every protocol that reads features. `enabled` False (no protocol reads them) skips it."""
    from ssl_lib.stages.skip import skip

    if not enabled:
        skip(result.path, "features")
        return
    from ssl_lib.stages.features import features as run

    result.metadata.update(run(dataset=dataset.path, backbone=backbone.path, output=result.path,
                               layers=layers or None, baselines=baselines, gpus=gpus))
