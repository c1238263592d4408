from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.images import TRAINING_IMAGE


@dsl.component(base_image=TRAINING_IMAGE, install_kfp_package=False)
def pretrain(config: str, dataset: Input[Dataset], checkpoint: Output[Model], metrics: Output[Metrics],
             cfg_options: list = [],
             launcher: str = "local", nproc: int = 1, num_workers: int = 1, gpus_per_worker: int = 1,
             image: str = "", namespace: str = "", secret_env: str = "ssl-lib-object-storage",
             wait_timeout: int = 86400) -> float:
    """Self-supervised pretraining; returns the final loss. The checkpoint holds the whole training state.

    launcher=pytorchjob runs `image` (the pipelines pass TRAINING_IMAGE, this component's own image as
    pinned at compile time) in the pod's own namespace unless `namespace` is given, with the keys of
    Secret `secret_env` as env. Defaults are literals: the body runs from its source in the container."""
    import json
    import math

    from ssl_lib.stages.pretrain import pretrain as run

    # PyTorchJob replicas run in pods of their own: they read the dataset from object storage (its URI),
    # not from this pod's local copy of the artifact.
    out = run(config=config, dataset=dataset.uri if launcher == "pytorchjob" else dataset.path,
              output=checkpoint.path, cfg_options=cfg_options,
              launcher=launcher, nproc=nproc, num_workers=num_workers, gpus_per_worker=gpus_per_worker,
              image=image, namespace=namespace, secret_env=secret_env, wait_timeout=wait_timeout)
    checkpoint.metadata.update({k: v for k, v in out.items() if k != "work_dir"})
    for key in ("final_loss", "epochs", "iterations", "world_size", "seconds"):
        if isinstance(out.get(key), (int, float)) and math.isfinite(out[key]):
            metrics.log_metric(key, out[key])
    with open(metrics.path, "w") as f:  # kfp.local caches an output artifact only when it has a file
        json.dump(metrics.metadata, f)
    return float(out["final_loss"])
