from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output

from components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def report(knn_result: Input[Artifact], checkpoint: Input[Model], dataset: Input[Dataset],
           report_dir: Output[Artifact], markdown: Output[Markdown]):
    """report.md + metrics.json (+ plot); the Markdown artifact shows the table in the KFP UI."""
    import shutil

    from ssl_lib.stages.report import report as run

    run(knn=knn_result.path, pretrain=checkpoint.path, dataset=dataset.path, output=report_dir.path)
    shutil.copyfile(f"{report_dir.path}/report.md", markdown.path)
