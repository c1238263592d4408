from typing import Optional

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Model, Output

from components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def report(dataset: Input[Dataset], report_dir: Output[Artifact], markdown: Output[Markdown], html: Output[HTML],
           knn_result: Optional[Input[Artifact]] = None, svm_result: Optional[Input[Artifact]] = None,
           low_shot_svm_result: Optional[Input[Artifact]] = None, linear_result: Optional[Input[Artifact]] = None,
           fast_linear_result: Optional[Input[Artifact]] = None, semi_result: Optional[Input[Artifact]] = None,
           finetune_result: Optional[Input[Artifact]] = None,
           detection_result: Optional[Input[Artifact]] = None, segmentation_result: Optional[Input[Artifact]] = None,
           voc_dataset: Optional[Input[Dataset]] = None, checkpoint: Optional[Input[Model]] = None,
           history: str = ""):
    """report.md, report.html + metrics.json (+ plots) of every benchmark that ran; the Markdown and HTML
    artifacts show the report in the KFP UI.
    Without `checkpoint` (the benchmark-only pipeline) the report has no pretraining section. `history`
    (a JSON-lines file, local or s3://) keeps the trend across runs: the nightly pipeline sets it."""
    import shutil

    from ssl_lib.stages.report import report as run

    path = lambda artifact: artifact.path if artifact is not None else ""  # noqa: E731
    run(output=report_dir.path, knn=path(knn_result), svm=path(svm_result), low_shot_svm=path(low_shot_svm_result),
        linear=path(linear_result), fast_linear=path(fast_linear_result), semi=path(semi_result),
        finetune=path(finetune_result),
        detection=path(detection_result), segmentation=path(segmentation_result),
        pretrain=path(checkpoint), dataset=dataset.path, voc_dataset=path(voc_dataset), history=history)
    shutil.copyfile(f"{report_dir.path}/report.md", markdown.path)
    shutil.copyfile(f"{report_dir.path}/report.html", html.path)
