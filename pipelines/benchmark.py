"""The benchmark-only DAG, for nightly recurring runs: evaluate a checkpoint or backbone weights.

A prepared dataset (the `dataset` artifact of the prep stage, as a URI) and either a training
checkpoint (a `checkpoint.pth` file or a pretrain artifact folder: backbone extraction runs first) or
backbone weights (an extract artifact folder: used as they are) come in through importers; then
every benchmark stage: kNN, and the report. Given both URIs, the checkpoint wins. A checkpoint URI may
also be a training work dir: its newest epoch_N.pth is evaluated. A checkpoint from elsewhere (an
MMSelfSup model-zoo file, torchvision weights) needs `checkpoint_config`, a config whose
`model.backbone` it fits, with `checkpoint_cfg_options` to adjust it. With `history_uri` (a JSON-lines
file in object storage) each night adds its line to the trend that the report shows.
"""
from kfp import dsl
from kfp.dsl import Dataset, Model

from components.extract import extract
from components.knn import knn
from components.report import report
from pipelines.object_storage import use_object_storage
from pipelines.resources import on_gpus


def _evaluate(dataset, backbone, knn_ks, knn_gpus, history_uri) -> None:
    """Every benchmark stage of a backbone: kNN, then the report (and its line in the trend file)."""
    bench = on_gpus(knn(dataset=dataset, backbone=backbone, ks=knn_ks, gpus=knn_gpus), knn_gpus)
    summary = report(knn_result=bench.outputs["result"], dataset=dataset, history=history_uri)
    use_object_storage(bench, summary)


@dsl.pipeline(name="ssl-benchmark",
              description="kNN benchmark and report of a checkpoint or backbone weights on a prepared dataset.")
def benchmark(
    dataset_uri: str,
    checkpoint_uri: str = "",
    checkpoint_config: str = "",
    checkpoint_cfg_options: list = [],
    backbone_uri: str = "",
    knn_ks: list = [10, 20, 100, 200],
    knn_gpus: int = 0,
    history_uri: str = "",
):
    # Each branch runs the benchmark stages itself: kfp.local does not resolve a dsl.OneOf of artifacts.
    data = dsl.importer(artifact_uri=dataset_uri, artifact_class=Dataset, reimport=False)
    data.set_display_name("import-dataset")
    with dsl.If(checkpoint_uri != "", name="from-checkpoint"):
        checkpoint = dsl.importer(artifact_uri=checkpoint_uri, artifact_class=Model, reimport=False)
        checkpoint.set_display_name("import-checkpoint")
        weights = extract(checkpoint=checkpoint.output, config=checkpoint_config, cfg_options=checkpoint_cfg_options)
        use_object_storage(weights)
        _evaluate(data.output, weights.outputs["backbone"], knn_ks, knn_gpus, history_uri)
    with dsl.Else(name="from-backbone"):
        given = dsl.importer(artifact_uri=backbone_uri, artifact_class=Model, reimport=False)
        given.set_display_name("import-backbone")
        _evaluate(data.output, given.output, knn_ks, knn_gpus, history_uri)


def check_arguments(arguments: dict) -> None:
    """What the DAG cannot say itself: a run needs a checkpoint or backbone weights to evaluate."""
    if not (arguments.get("checkpoint_uri") or arguments.get("backbone_uri")):
        raise ValueError("the benchmark pipeline needs checkpoint_uri=<checkpoint.pth or pretrain artifact> "
                         "or backbone_uri=<extract artifact folder>")
