"""The benchmark-only DAG, for nightly recurring runs: evaluate a checkpoint or backbone weights.

A prepared dataset (the `dataset` artifact of the prep stage, as a URI) and either a training
checkpoint (a `checkpoint.pth` file or a pretrain artifact folder: backbone extraction runs first) or
backbone weights (an extract artifact folder: used as they are) come in through importers; then
the benchmark stages (pipelines/dag.py: features, kNN, the SVMs, linear, fast linear, semi-supervised, fine-tuning,
detection, segmentation)
and the report. Given both URIs, the checkpoint wins. A checkpoint URI may
also be a training work dir: its newest epoch_N.pth is evaluated. A checkpoint from elsewhere (an
MMSelfSup model-zoo file, torchvision weights) needs `checkpoint_config`, a config whose
`model.backbone` it fits, with `checkpoint_cfg_options` to adjust it. With `history_uri` (a JSON-lines
file in object storage) each night adds its line to the trend that the report shows.
"""
from kfp import dsl
from kfp.dsl import Dataset, Model

from components.extract import extract
from components.prep import prep
from pipelines.dag import LINEAR_CONFIG, SEMI_CONFIG, evaluate, evaluate_params
from pipelines.object_storage import use_object_storage
from ssl_lib.stages.plan import PROTOCOLS


@dsl.pipeline(name="ssl-benchmark",
              description="Every benchmark (kNN, VOC07 SVM, low-shot SVM, linear, fast linear, "
                          "semi-supervised, fine-tuning, detection, segmentation) and the report of a checkpoint or "
                          "backbone weights.")
def benchmark(
    dataset_uri: str,
    checkpoint_uri: str = "",
    checkpoint_config: str = "",
    checkpoint_cfg_options: list = [],
    backbone_uri: str = "",
    benchmarks: list = list(PROTOCOLS),
    voc_source: str = "fashion-mnist-mosaic",
    voc_train_limit: int = 0,
    voc_test_limit: int = 0,
    voc_mosaic_size: int = 96,
    knn_ks: list = [10, 20, 100, 200],
    knn_gpus: int = 0,
    features_gpus: int = 0,
    eval_gpus: int = 0,
    low_shot_ks: list = [1, 2, 4, 8, 16, 32, 64, 96],
    low_shot_samples: int = 5,
    low_shot_layers: list = [],
    linear_config: str = LINEAR_CONFIG,
    linear_epochs: int = 0,
    semi_config: str = SEMI_CONFIG,
    semi_epochs: int = 0,
    semi_fractions: list = [0.01, 0.1],
    finetune_config: str = "",
    finetune_epochs: int = 0,
    finetune_train_limit: int = 0,
    finetune_baseline: bool = False,
    detseg_source: str = "fashion-mnist-mosaic",
    detseg_train_limit: int = 0,
    detseg_test_limit: int = 0,
    detseg_mosaic_size: int = 96,
    detseg_gpus: int = 0,
    detection_protocol: str = "voc0712",
    detection_config: str = "",
    detection_iters: int = 0,
    segmentation_protocol: str = "voc12aug",
    segmentation_config: str = "",
    segmentation_iters: int = 0,
    history_uri: str = "",
):
    params = evaluate_params(locals())
    data = dsl.importer(artifact_uri=dataset_uri, artifact_class=Dataset, reimport=False)
    data.set_display_name("import-dataset")
    voc = prep(source=voc_source, train_limit=voc_train_limit, test_limit=voc_test_limit,
               mosaic_size=voc_mosaic_size).set_display_name("prep-voc")
    use_object_storage(voc)
    # Each branch runs the benchmark stages itself: kfp.local does not resolve a dsl.OneOf of artifacts.
    with dsl.If(checkpoint_uri != "", name="from-checkpoint"):
        checkpoint = dsl.importer(artifact_uri=checkpoint_uri, artifact_class=Model, reimport=False)
        checkpoint.set_display_name("import-checkpoint")
        weights = extract(checkpoint=checkpoint.output, config=checkpoint_config, cfg_options=checkpoint_cfg_options)
        use_object_storage(weights)
        evaluate(data.output, voc.outputs["dataset"], weights.outputs["backbone"], params)
    with dsl.Else(name="from-backbone"):
        given = dsl.importer(artifact_uri=backbone_uri, artifact_class=Model, reimport=False)
        given.set_display_name("import-backbone")
        evaluate(data.output, voc.outputs["dataset"], given.output, params)


def check_arguments(arguments: dict) -> None:
    """What the DAG cannot say itself: a run needs a checkpoint or backbone weights to evaluate."""
    if not (arguments.get("checkpoint_uri") or arguments.get("backbone_uri")):
        raise ValueError("the benchmark pipeline needs checkpoint_uri=<checkpoint.pth or pretrain artifact> "
                         "or backbone_uri=<extract artifact folder>")
