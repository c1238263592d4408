from kfp import dsl
from kfp.dsl import Dataset, Output

from components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def prep(source: str, dataset: Output[Dataset], train_limit: int = 0, test_limit: int = 0,
         test_fraction: float = 0.2) -> int:
    """Images (Fashion-MNIST IDX, an image folder, a list file, or s3://) -> Parquet shards + manifest."""
    from ssl_lib.stages.prep import prep as run

    metrics = run(source=source, output=dataset.path, train_limit=train_limit, test_limit=test_limit,
                  test_fraction=test_fraction)
    dataset.metadata.update(metrics)
    return int(metrics["num_train"])
