from typing import Optional

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Model, Output

from components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def report(knn_result: Input[Artifact], dataset: Input[Dataset], report_dir: Output[Artifact],
           markdown: Output[Markdown], html: Output[HTML], checkpoint: Optional[Input[Model]] = None,
           history: str = ""):
    """report.md, report.html + metrics.json (+ plot); the Markdown and HTML artifacts show the report
    in the KFP UI.
    Without `checkpoint` (the benchmark-only pipeline) the report has no pretraining section. `history`
    (a JSON-lines file, local or s3://) keeps the trend across runs: the nightly pipeline sets it."""
    import shutil

    from ssl_lib.stages.report import report as run

    run(knn=knn_result.path, pretrain=checkpoint.path if checkpoint is not None else "", dataset=dataset.path,
        output=report_dir.path, history=history)
    shutil.copyfile(f"{report_dir.path}/report.md", markdown.path)
    shutil.copyfile(f"{report_dir.path}/report.html", html.path)
