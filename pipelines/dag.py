"""The benchmark part of both pipelines: one feature pass per dataset, then every protocol as its own
component, each switched on or off by the run's `benchmarks` list, then the report."""
from components.detection import detection
from components.fast_linear import fast_linear
from components.finetune import finetune
from components.features import features
from components.knn import knn
from components.linear import linear
from components.low_shot_svm import low_shot_svm
from components.plan import plan_benchmarks
from components.prep import prep
from components.report import report
from components.segmentation import segmentation
from components.semi import semi
from components.svm import svm
from pipelines.object_storage import use_object_storage
from pipelines.resources import on_gpus

# the local CPU defaults, trimmed (see the README); the seed's settings are other configs of the same folders
LINEAR_CONFIG = "benchmarks/classification/fmnist/resnet_mhead_1xb64-steplr-2e_fmnist-2k.py"
SEMI_CONFIG = "benchmarks/classification/fmnist/resnet18-w16_semi_1xb64-steplr-2e_fmnist.py"


# the pipeline parameters `evaluate` reads; both pipelines declare them all
EVALUATE_PARAMS = ("benchmarks", "knn_ks", "knn_gpus", "features_gpus", "eval_gpus", "low_shot_ks", "low_shot_samples",
                   "low_shot_layers", "linear_config", "linear_epochs", "semi_config", "semi_epochs", "semi_fractions",
                   "finetune_config", "finetune_epochs", "finetune_train_limit", "finetune_baseline",
                   "detseg_source", "detseg_train_limit", "detseg_test_limit", "detseg_mosaic_size", "detseg_gpus",
                   "detection_protocol", "detection_config", "detection_iters", "segmentation_protocol",
                   "segmentation_config", "segmentation_iters", "history_uri")


def evaluate_params(pipeline_args: dict) -> dict:
    """The parameters of `evaluate` out of a pipeline function's arguments (its `locals()`)."""
    return {name: pipeline_args[name] for name in EVALUATE_PARAMS}


def evaluate(dataset, voc_dataset, backbone, params: dict, checkpoint=None):
    """Every benchmark of `backbone` and the report; returns the report task. `dataset` is the
    single-label data (kNN, linear, fast linear, semi-supervised, fine-tuning), `voc_dataset` the multi-label
    data of the SVM protocols; the detection and segmentation data are prepared here, when one of
    the two runs. `params` holds the pipeline parameters the stages take."""
    planned = plan_benchmarks(benchmarks=params["benchmarks"])
    switch = planned.outputs
    detseg = prep(source=params["detseg_source"], task="detseg", train_limit=params["detseg_train_limit"],
                  test_limit=params["detseg_test_limit"], mosaic_size=params["detseg_mosaic_size"],
                  enabled=switch["detseg_data"]).set_display_name("prep-detseg")
    detseg_data, detseg_gpus = detseg.outputs["dataset"], params["detseg_gpus"]
    gpus, knn_gpus, eval_gpus = params["features_gpus"], params["knn_gpus"], params["eval_gpus"]
    feats = on_gpus(features(dataset=dataset, backbone=backbone, enabled=switch["features"], gpus=gpus), gpus)
    # the SVM protocols report the pretrained backbone only: no baselines in this pass
    voc_feats = on_gpus(features(dataset=voc_dataset, backbone=backbone, enabled=switch["voc_features"],
                                 baselines=False, gpus=gpus), gpus).set_display_name("voc-features")
    tasks = {
        "knn": on_gpus(knn(features=feats.outputs["result"], enabled=switch["knn"], ks=params["knn_ks"],
                           gpus=knn_gpus), knn_gpus),
        "svm": svm(features=voc_feats.outputs["result"], enabled=switch["svm"]),
        "low_shot_svm": low_shot_svm(features=voc_feats.outputs["result"], enabled=switch["low_shot_svm"],
                                     ks=params["low_shot_ks"], samples=params["low_shot_samples"],
                                     layers=params["low_shot_layers"]),
        "linear": on_gpus(linear(dataset=dataset, backbone=backbone, enabled=switch["linear"],
                                 config=params["linear_config"], epochs=params["linear_epochs"], gpus=eval_gpus),
                          eval_gpus),
        "fast_linear": fast_linear(features=feats.outputs["result"], enabled=switch["fast_linear"]),
        "semi": on_gpus(semi(dataset=dataset, backbone=backbone, enabled=switch["semi"],
                             config=params["semi_config"], epochs=params["semi_epochs"],
                             fractions=params["semi_fractions"], gpus=eval_gpus), eval_gpus),
        "finetune": on_gpus(finetune(dataset=dataset, backbone=backbone, enabled=switch["finetune"],
                                     config=params["finetune_config"], epochs=params["finetune_epochs"],
                                     train_limit=params["finetune_train_limit"], baseline=params["finetune_baseline"],
                                     gpus=eval_gpus), eval_gpus),
        "detection": on_gpus(detection(dataset=detseg_data, backbone=backbone, enabled=switch["detection"],
                                       protocol=params["detection_protocol"], config=params["detection_config"],
                                       iters=params["detection_iters"], gpus=detseg_gpus), detseg_gpus),
        "segmentation": on_gpus(segmentation(dataset=detseg_data, backbone=backbone, enabled=switch["segmentation"],
                                             protocol=params["segmentation_protocol"],
                                             config=params["segmentation_config"],
                                             iters=params["segmentation_iters"], gpus=detseg_gpus), detseg_gpus),
    }
    extra = {"checkpoint": checkpoint} if checkpoint is not None else {}
    summary = report(dataset=dataset, voc_dataset=voc_dataset, history=params["history_uri"], **extra,
                     **{f"{name}_result": task.outputs["result"] for name, task in tasks.items()})
    use_object_storage(planned, detseg, feats, voc_feats, summary, *tasks.values())
    return summary
