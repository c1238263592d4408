import json

from ssl_lib.stages.report import report

KNN = {"ks": [10, 20], "temperature": 0.07, "num_train": 100, "num_test": 50, "algorithm": "MoCo", "epoch": 10,
       "results": {"pretrained": {"top1": {"10": 0.8, "20": 0.79}, "top5": {"10": 0.99, "20": 0.99}},
                   "random_init": {"top1": {"10": 0.7, "20": 0.75}, "top5": {"10": 0.9, "20": 0.9}},
                   "raw_pixels": {"top1": {"10": 0.82, "20": 0.83}, "top5": {"10": 0.99, "20": 0.99}}},
       "margin_over_random_init": {"k": 20, "top1": 0.04}}


def _knn_dir(tmp_path, name, sha, top1_k20):
    d = tmp_path / name
    d.mkdir()
    metrics = json.loads(json.dumps(KNN))
    metrics["backbone_sha256"] = sha
    metrics["results"]["pretrained"]["top1"]["20"] = top1_k20
    metrics["margin_over_random_init"]["top1"] = top1_k20 - 0.75
    (d / "metrics.json").write_text(json.dumps(metrics))
    return str(d)


def test_report_has_the_knn_table_with_baselines_and_every_figure_in_metrics_json(tmp_path):
    out = tmp_path / "report"
    report(knn=_knn_dir(tmp_path, "knn", "a" * 64, 0.79), output=str(out))
    md = (out / "report.md").read_text()
    assert "| pretrained backbone | 80.00 | 79.00 |" in md
    assert "| same backbone, random init | 70.00 | 75.00 |" in md and "| raw pixels | 82.00 | 83.00 |" in md
    assert "**+4.00** points" in md and (out / "knn.png").stat().st_size > 0
    assert json.loads((out / "metrics.json").read_text())["knn"]["results"]["raw_pixels"]["top1"]["20"] == 0.83


def test_trend_keeps_one_line_per_backbone_and_shows_earlier_runs(tmp_path):
    history = str(tmp_path / "trend" / "history.jsonl")
    report(knn=_knn_dir(tmp_path, "night1", "a" * 64, 0.79), output=str(tmp_path / "r1"), history=history)
    report(knn=_knn_dir(tmp_path, "night1-rerun", "a" * 64, 0.79), output=str(tmp_path / "r1b"), history=history)
    report(knn=_knn_dir(tmp_path, "night2", "b" * 64, 0.81), output=str(tmp_path / "r2"), history=history)
    lines = [json.loads(line) for line in open(history)]
    assert [(e["backbone_sha256"][0], e["top1"]) for e in lines] == [("a", 0.79), ("b", 0.81)]
    md = (tmp_path / "r2" / "report.md").read_text()
    assert "| 1 | MoCo | 10 | 79.00 | +4.00 |" in md and "| 2 (this run) | MoCo | 10 | 81.00 | +6.00 |" in md


def test_the_report_names_the_skipped_inputs_with_their_reasons(tmp_path):
    dataset = tmp_path / "ds"
    dataset.mkdir()
    skipped = [{"input": f"cat/{i}.jpg", "reason": "cannot decode image: truncated"} for i in range(12)]
    (dataset / "manifest.json").write_text(json.dumps(
        {"source": "/data/pets", "num_classes": 2, "counts": {"train": 8, "test": 2}, "skipped": skipped}))
    report(knn=_knn_dir(tmp_path, "knn", "a" * 64, 0.79), output=str(tmp_path / "r"), dataset=str(dataset))
    md = (tmp_path / "r" / "report.md").read_text()
    assert "12 inputs skipped:" in md and "- `cat/0.jpg`: cannot decode image: truncated" in md
    assert "- `cat/10.jpg`" not in md and "... and 2 more (the dataset's manifest.json lists them all)" in md

    (dataset / "manifest.json").write_text(json.dumps(
        {"source": "/data/pets", "num_classes": 2, "counts": {"train": 8, "test": 2}, "skipped": skipped[:1]}))
    report(knn=_knn_dir(tmp_path, "knn2", "a" * 64, 0.79), output=str(tmp_path / "r2"), dataset=str(dataset))
    assert "1 input skipped:" in (tmp_path / "r2" / "report.md").read_text()


def test_the_html_page_is_self_contained_and_escapes_what_it_shows(tmp_path):
    dataset = tmp_path / "ds"
    dataset.mkdir()
    (dataset / "manifest.json").write_text(json.dumps(
        {"source": "/data/<pets>", "num_classes": 2, "counts": {"train": 8, "test": 2},
         "skipped": [{"input": "a<b>.jpg", "reason": "cannot decode image: <script>"}]}))
    report(knn=_knn_dir(tmp_path, "knn", "a" * 64, 0.79), output=str(tmp_path / "r"), dataset=str(dataset))
    page = (tmp_path / "r" / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<h1>SSL benchmark report</h1>" in page
    assert "<tr><td>pretrained backbone</td><td class=num>80.00</td><td class=num>79.00</td></tr>" in page
    assert "<strong>+4.00</strong>" in page and '<img src="data:image/png;base64,iVBOR' in page
    assert "<script>" not in page and "&lt;script&gt;" in page and "<code>a&lt;b&gt;.jpg</code>" in page
    assert "<code>/data/&lt;pets&gt;</code>" in page


DETECTION = {"protocol": "detection", "benchmark": "voc0712", "iters": 100, "num_train": 200, "num_test": 100,
             "config": "benchmarks/mmdetection/mosaic/faster_rcnn_r18-w16_c4_mosaic.py", "algorithm": "MoCo",
             "backbone_sha256": "a" * 64,
             "results": {"pretrained": {"mAP": 31.25, "AP50": 60.5}, "random_init": {"mAP": 20.0, "AP50": 45.125}}}
SEGMENTATION = {"protocol": "segmentation", "benchmark": "voc12aug", "iters": 50, "num_train": 200, "num_test": 100,
                "config": "benchmarks/mmsegmentation/mosaic/fcn_r18-w16_mosaic.py", "algorithm": "MoCo",
                "backbone_sha256": "a" * 64,
                "results": {"pretrained": {"mIoU": 40.5, "aAcc": 80.0}, "random_init": {"mIoU": 33.0, "aAcc": 75.0}}}


def test_detection_and_segmentation_appear_in_the_seeds_table_shape_and_the_summary(tmp_path):
    from ssl_lib.benchmarks.tables import summary_text

    dirs = {}
    for name, metrics in (("detection", DETECTION), ("segmentation", SEGMENTATION)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(metrics))
        dirs[name] = str(tmp_path / name)
    out = tmp_path / "r"
    report(output=str(out), **dirs)
    md = (out / "report.md").read_text()
    assert "## Detection: Pascal VOC 2007 + 2012 (%), 100 iterations, 200 train / 100 test images" in md
    assert "| Model | Config | mAP | AP50 |" in md
    assert "| MoCo | faster_rcnn_r18-w16_c4_mosaic | 31.25 | 60.50 |" in md
    assert "| same backbone, random init | faster_rcnn_r18-w16_c4_mosaic | 20.00 | 45.12 |" in md
    assert "| Model | Config | mIOU |" in md and "| MoCo | fcn_r18-w16_mosaic | 40.50 |" in md
    assert (out / "detection.png").stat().st_size > 0 and (out / "segmentation.png").stat().st_size > 0
    text = summary_text({"detection": DETECTION, "segmentation": SEGMENTATION})
    rows = [line.split() for line in text.splitlines()[1:]]
    assert rows == [["detection", "(voc0712)", "mAP", "%,", "100", "iterations", "31.25", "random", "init", "20.00"],
                    ["segmentation", "(voc12aug)", "mIOU", "%,", "50", "iterations", "40.50", "random", "init", "33.00"]]
