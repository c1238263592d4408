from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def prep(source: str, dataset: Output[Dataset], metrics: Output[Metrics], train_limit: int = 0,
         test_limit: int = 0, test_fraction: float = 0.2, mosaic_size: int = 96, mosaic_seed: int = 0,
         task: str = "classification", enabled: bool = True) -> int:
    """Images (Fashion-MNIST IDX, an image folder, a list file, a VOC2007 folder, the built-in
    fashion-mnist-mosaic, or s3://) -> Parquet shards + manifest; with task="detseg", a VOC / COCO /
    Cityscapes folder (or the mosaic) -> the detection and segmentation benchmarks' dataset folder."""
    import json

    if not enabled:  # no benchmark of this run reads it
        from ssl_lib.stages.skip import skip

        skip(dataset.path, f"prep-{task}", metrics.path)
        return 0
    from ssl_lib.stages.prep import prep as run

    out = run(source=source, output=dataset.path, train_limit=train_limit, test_limit=test_limit,
              test_fraction=test_fraction, mosaic_size=mosaic_size, mosaic_seed=mosaic_seed, task=task)
    dataset.metadata.update(out)
    for key in ("num_train", "num_test", "num_classes", "num_skipped"):
        if key in out:
            metrics.log_metric(key, out[key])
    with open(metrics.path, "w") as f:  # kfp.local caches an output artifact only when it has a file
        json.dump(metrics.metadata, f)
    return int(out.get("num_train", 0))
