"""The full DAG: prep -> pretrain -> extract -> features -> every benchmark -> report; every stage
reads and writes object storage with the credentials of Secret ssl-lib-object-storage
(pipelines/object_storage.py)."""
from kfp import dsl
from kfp.dsl import Artifact

from components.extract import extract
from components.images import TRAINING_IMAGE
from components.prep import prep
from components.pretrain import pretrain
from pipelines.dag import LINEAR_CONFIG, SEMI_CONFIG, evaluate, evaluate_params
from pipelines.object_storage import use_object_storage
from ssl_lib.stages.plan import PROTOCOLS

DEFAULT_CONFIG = "selfsup/rotation_pred/rotation-pred_resnet18-w16_1xb64-steplr-3e_fmnist.py"


@dsl.pipeline(name="ssl-pretrain-and-benchmark",
              description="Self-supervised pretraining, backbone extraction and the seed's classification "
                          "benchmarks (kNN, VOC07 SVM, low-shot SVM, linear, fast linear, semi-supervised, fine-tuning), "
                          "detection and segmentation, with a report.")
def pretrain_and_benchmark(
    source: str = "fashion-mnist",
    config: str = DEFAULT_CONFIG,
    cfg_options: list = [],
    train_limit: int = 10000,
    test_limit: int = 2000,
    launcher: str = "local",
    nproc: int = 1,
    num_workers: int = 1,
    gpus_per_worker: int = 1,
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
) -> Artifact:
    params = evaluate_params(locals())
    data = prep(source=source, train_limit=train_limit, test_limit=test_limit).set_display_name("prep")
    voc = prep(source=voc_source, train_limit=voc_train_limit, test_limit=voc_test_limit,
               mosaic_size=voc_mosaic_size).set_display_name("prep-voc")
    train = pretrain(config=config, dataset=data.outputs["dataset"], cfg_options=cfg_options, launcher=launcher,
                     nproc=nproc, num_workers=num_workers, gpus_per_worker=gpus_per_worker, image=TRAINING_IMAGE)
    weights = extract(checkpoint=train.outputs["checkpoint"])
    use_object_storage(data, voc, train, weights)
    summary = evaluate(data.outputs["dataset"], voc.outputs["dataset"], weights.outputs["backbone"], params,
                       checkpoint=train.outputs["checkpoint"])
    return summary.outputs["report_dir"]
