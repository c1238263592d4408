"""The full DAG: prep -> pretrain -> extract -> kNN -> report; every stage reads and writes object
storage with the credentials of Secret ssl-lib-object-storage (pipelines/object_storage.py)."""
from kfp import dsl
from kfp.dsl import Artifact

from components.extract import extract
from components.images import TRAINING_IMAGE
from components.knn import knn
from components.prep import prep
from components.pretrain import pretrain
from components.report import report
from pipelines.object_storage import use_object_storage
from pipelines.resources import on_gpus

DEFAULT_CONFIG = "selfsup/rotation_pred/rotation-pred_resnet18-w16_1xb64-steplr-3e_fmnist.py"


@dsl.pipeline(name="ssl-pretrain-and-benchmark",
              description="Self-supervised pretraining, backbone extraction and the kNN benchmark, with a report.")
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
    knn_ks: list = [10, 20, 100, 200],
    knn_gpus: int = 0,
    history_uri: str = "",
) -> Artifact:
    data = prep(source=source, train_limit=train_limit, test_limit=test_limit).set_display_name("prep")
    train = pretrain(config=config, dataset=data.outputs["dataset"], cfg_options=cfg_options, launcher=launcher,
                     nproc=nproc, num_workers=num_workers, gpus_per_worker=gpus_per_worker, image=TRAINING_IMAGE)
    weights = extract(checkpoint=train.outputs["checkpoint"])
    bench = on_gpus(knn(dataset=data.outputs["dataset"], backbone=weights.outputs["backbone"], ks=knn_ks,
                    gpus=knn_gpus), knn_gpus)
    summary = report(knn_result=bench.outputs["result"], checkpoint=train.outputs["checkpoint"],
                     dataset=data.outputs["dataset"], history=history_uri)
    use_object_storage(data, train, weights, bench, summary)
    return summary.outputs["report_dir"]
