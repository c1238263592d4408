"""Stage `report`: every figure of the run in `metrics.json`, and `report.md` beside it with a
summary table, then each benchmark that ran in the seed's table shape with its plot; `report.html` is the same page,
self-contained (the plot inlined), for the KFP UI's HTML viewer and for browsers."""
from __future__ import annotations

import argparse
import base64
import html
import json
import re
import sys

from .. import outlock, storage
from ..benchmarks import tables
from ..benchmarks.tables import SEED_LAYER_NAMES, pct
from ..errors import DataError
from ._cli import run_cli

PROTOCOLS = ("knn", "svm", "low_shot_svm", "linear", "fast_linear", "semi", "finetune", "detection", "segmentation")


def _read_json(uri: str, what: str) -> dict:
    if not storage.exists(uri):
        raise DataError(f"{what} not found: {uri}")
    return json.loads(storage.read_text(uri))


def read_results(**uris: str) -> dict[str, dict]:
    """{protocol: metrics} of the benchmark outputs given, leaving out the ones the run skipped."""
    results = {}
    for name, uri in uris.items():
        if uri:
            metrics = _read_json(storage.join(uri, "metrics.json"), f"{name} metrics")
            if not metrics.get("skipped"):
                results[name] = metrics
    return results


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def markdown_to_html(md: str, title: str, images: dict[str, bytes]) -> str:
    """The subset of Markdown this report writes (headings, paragraphs, tables, lists, images,
    bold, code) as one HTML page; images named in `images` are inlined as data URIs."""
    body, table, items = [], [], []

    def flush() -> None:
        if table:
            header, *rows = [[c.strip() for c in r.strip("|").split("|")] for r in table
                             if not re.fullmatch(r"\|[\s:|-]+\|", r)]
            cell = lambda c, tag: (f"<{tag} class=num>" if re.fullmatch(r"[+-]?[\d.]+", c)  # noqa: E731
                                   else f"<{tag}>") + _inline(c) + f"</{tag}>"
            body.append("<table><tr>" + "".join(cell(c, "th") for c in header) + "</tr>"
                        + "".join("<tr>" + "".join(cell(c, "td") for c in r) + "</tr>" for r in rows) + "</table>")
            table.clear()
        if items:
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        if line.startswith("- "):
            items.append(line[2:])
            continue
        flush()
        heading, image = re.fullmatch(r"(#{1,6}) (.*)", line), re.fullmatch(r"!\[(.*)\]\((.*)\)", line)
        if heading:
            n = len(heading.group(1))
            body.append(f"<h{n}>{_inline(heading.group(2))}</h{n}>")
        elif image:
            name = image.group(2)
            src = (f"data:image/png;base64,{base64.b64encode(images[name]).decode()}" if name in images
                   else html.escape(name))
            body.append(f'<p><img src="{src}" alt="{html.escape(image.group(1))}"></p>')
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
    flush()
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em}"
             ".num{text-align:right}code{background:#f4f4f4;padding:0 .2em}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


def update_history(history: str, entry: dict) -> list[dict]:
    """Add `entry` to the JSON-lines trend file at `history` (one line per backbone: a rerun of the
    same backbone replaces its line, so reruns do not inflate the trend) and return every entry."""
    entries = []
    if storage.exists(history):
        for n, line in enumerate(storage.read_text(history).splitlines(), 1):
            try:
                entries.append(json.loads(line))
            except ValueError as err:
                raise DataError(f"{history} line {n} is not JSON: {err}") from err
    entries = [e for e in entries if e.get("backbone_sha256") != entry["backbone_sha256"]] + [entry]
    storage.write_text(history, "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))
    return entries


def trend_table(entries: list[dict], k: int, last: int = 10) -> str:
    lines = [f"| run | algorithm | epochs | kNN top-1 k={k} | margin over random init |",
             "| --- | --- | ---: | ---: | ---: |"]
    for n, e in enumerate(entries[-last:], max(1, len(entries) - last + 1)):
        margin = f"{100 * e['margin']:+.2f}" if e.get("margin") is not None else "-"
        lines.append(f"| {n}{' (this run)' if e is entries[-1] else ''} | {e.get('algorithm', '-')} | "
                     f"{'-' if e.get('epochs') is None else e['epochs']} | {pct(e.get('top1'))} | {margin} |")
    return "\n".join(lines)


SKIPPED_SHOWN = 10


def _dataset_lines(manifest: dict, what: str) -> list[str]:
    skipped = manifest.get("skipped", [])
    md = [f"{what}: `{manifest.get('source')}`, {manifest.get('num_classes')} classes"
          f"{' (multi-label)' if manifest.get('multi_label') else ''}, counts {json.dumps(manifest.get('counts'))}, "
          f"{len(skipped)} input{'' if len(skipped) == 1 else 's'} skipped{':' if skipped else '.'}", ""]
    md += [f"- `{s['input']}`: {s['reason']}" for s in skipped[:SKIPPED_SHOWN]]
    if len(skipped) > SKIPPED_SHOWN:
        md += [f"- ... and {len(skipped) - SKIPPED_SHOWN} more (the dataset's manifest.json lists them all)"]
    return md + ([""] if skipped else [])


def _sections(results: dict, model: str, plots: dict) -> list[str]:
    """Each protocol's section in the seed's table shape, with its plot (added to `plots`)."""
    md = []
    knn = results.get("knn")
    if knn:
        md += [f"## kNN top-1 (%), T = {knn['temperature']}, {knn['num_train']} train / {knn['num_test']} test "
               f"images, {knn.get('layer', 'avgpool')} features", "", tables.knn_table(knn), ""]
        margin = knn.get("margin_over_random_init")
        if margin:
            md += [f"Margin of the pretrained backbone over the same backbone at random init (k={margin['k']}): "
                   f"**{100 * margin['top1']:+.2f}** points.", ""]
        plots["knn.png"] = (tables.plot_knn, knn)
        md += ["![kNN top-1 against k](knn.png)", ""]
    svm, low = results.get("svm"), results.get("low_shot_svm")
    if svm or low:
        md += ["## VOC07 SVM / Low-shot SVM (mAP %)", "", tables.svm_table(model, svm, low), ""]
        if svm:
            md += [f"SVM mAP per layer ({svm.get('num_train')} trainval / {svm.get('num_test')} test images, cost "
                   f"chosen per class by {svm.get('folds', 3)}-fold CV on trainval):", "",
                   tables.svm_layers_table(svm), ""]
        if low:
            md += [f"Low-shot SVM, {SEED_LAYER_NAMES.get(low['best_layer'], low['best_layer'])}, mean ± std over "
                   f"{low.get('samples', 5)} samples per k:", "", tables.low_shot_table(low), ""]
            plots["low_shot.png"] = (tables.plot_low_shot, low)
            md += ["![low-shot SVM mAP against k](low_shot.png)", ""]
    linear, fast = results.get("linear"), results.get("fast_linear")
    if linear:
        md += [f"## Linear evaluation (top-1 %), the seed's protocol, {linear.get('epochs')} epochs", "",
               tables.linear_table(model, linear), ""]
    if fast:
        c = fast["chosen"]
        md += ["## Fast linear evaluation on cached features (top-1 %)", "",
               f"{len(fast['sweep'])} heads trained in one pass; chosen on a held-out part of the train split: "
               f"{c['layer']}, lr {c['lr']:g}, weight decay {c['weight_decay']:g}: "
               f"test top-1 **{pct(c['test_top1'])}**.",
               "", tables.fast_linear_table(fast), ""]
    if linear or fast:
        series = {}
        if linear:
            series["linear (seed)"] = {layer: h["top1"] for layer, h in linear["heads"].items()}
        if fast:
            series["fast linear"] = {layer: r["test_top1"] for layer, r in fast["per_layer"].items()}
        plots["linear.png"] = (lambda s, path: tables.plot_layers(s, "linear top-1 (%)", path), series)
        md += ["![linear top-1 per layer](linear.png)", ""]
    semi = results.get("semi")
    if semi:
        md += ["## Semi-supervised classification (fine-tuned backbone + linear head)", "",
               tables.semi_table(model, semi), ""]
        plots["semi.png"] = (tables.plot_semi, semi)
        md += ["![semi-supervised top-1 over the grid](semi.png)", ""]
    ft = results.get("finetune")
    if ft:
        md += [f"## Fine-tuning (top-1 %), {ft['num_train']} train / {ft['num_test']} test images", "",
               tables.finetune_table(model, ft), ""]
        plots["finetune.png"] = (tables.plot_finetune, ft)
        md += ["![fine-tuning loss per epoch](finetune.png)", ""]
    for protocol in ("detection", "segmentation"):
        res = results.get(protocol)
        if res:
            md += [f"## {protocol.capitalize()}: {tables.DETSEG_NAMES[res['benchmark']]} (%), {res.get('iters')} "
                   f"iterations, {res.get('num_train')} train / {res.get('num_test')} test images", "",
                   tables.detseg_table(model, res), ""]
            plots[f"{protocol}.png"] = (tables.plot_detseg, res)
            md += [f"![{protocol}: pretrained against random init]({protocol}.png)", ""]
    return md


@outlock.writes("output", "history")
def report(output: str, knn: str = "", svm: str = "", low_shot_svm: str = "", linear: str = "",
           fast_linear: str = "", semi: str = "", finetune: str = "", detection: str = "", segmentation: str = "",
           pretrain: str = "",
           dataset: str = "", voc_dataset: str = "", title: str = "SSL benchmark report", history: str = "") -> dict:
    results = read_results(knn=knn, svm=svm, low_shot_svm=low_shot_svm, linear=linear, fast_linear=fast_linear,
                           semi=semi, finetune=finetune, detection=detection, segmentation=segmentation)
    if not results:
        raise DataError("report: no benchmark results (every protocol was skipped or none was given)")
    pretrain_metrics = _read_json(storage.join(pretrain, "metrics.json"), "pretrain metrics") if pretrain else {}
    manifests = {what: _read_json(storage.join(uri, "manifest.json"), f"{what} manifest")
                 for what, uri in (("dataset", dataset), ("voc_dataset", voc_dataset)) if uri}
    metrics = {what: {k: m[k] for k in ("source", "num_classes", "counts", "multi_label") if k in m}
               | {"num_skipped": len(m.get("skipped", []))} for what, m in manifests.items()}
    metrics.update(pretrain=pretrain_metrics, **results)
    first = next(iter(results.values()))
    model = first.get("algorithm") or "backbone"

    md = [f"# {title}", ""]
    for what, manifest in manifests.items():
        md += _dataset_lines(manifest, "Dataset" if what == "dataset" else "Multi-label dataset (SVM)")
    if pretrain_metrics:
        md += [f"Pretraining: {pretrain_metrics.get('epochs')} epochs, {pretrain_metrics.get('iterations')} "
               f"iterations on {pretrain_metrics.get('world_size')} process(es), final loss "
               f"{pretrain_metrics.get('final_loss', float('nan')):.4f}, {pretrain_metrics.get('seconds')} s.", ""]
    md += ["## Summary", "", "| benchmark | measure | pretrained | beside it |", "| --- | --- | ---: | --- |"]
    md += [f"| {' | '.join(row)} |" for row in tables.summary_rows(results)] + [""]
    plots: dict = {}
    md += _sections(results, model, plots)
    if history:
        knn_metrics = results.get("knn", {})
        margin = knn_metrics.get("margin_over_random_init")
        k = margin["k"] if margin else (knn_metrics.get("ks") or [None])[0]
        entries = update_history(history, {
            "backbone_sha256": first.get("backbone_sha256"), "algorithm": first.get("algorithm"),
            "epochs": first.get("epoch"), "k": k,
            "top1": knn_metrics["results"]["pretrained"]["top1"][str(k)] if knn_metrics else None,
            "margin": margin["top1"] if margin else None,
            "summary": {row[0]: row[2] for row in tables.summary_rows(results)}})
        md += [f"## Trend: this run and the ones before it ({history})", "", trend_table(entries, k), ""]
        metrics["history"] = entries
    with storage.publish_dir(output) as staging:
        for name, (plot, data) in plots.items():
            plot(data, staging / name)
        (staging / "report.md").write_text("\n".join(md))
        (staging / "report.html").write_text(
            markdown_to_html("\n".join(md), title, {name: (staging / name).read_bytes() for name in plots}))
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return {"report": storage.join(output, "report.md"), "html": storage.join(output, "report.html"),
            "metrics": storage.join(output, "metrics.json"), "protocols": list(results),
            "knn_top1_k20": results.get("knn", {}).get("results", {}).get("pretrained", {}).get("top1", {}).get("20")}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ssl_lib.stages.report", description=__doc__)
    p.add_argument("--output", required=True)
    for name in PROTOCOLS:
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, default="", help=f"{name} stage output")
    p.add_argument("--voc-dataset", default="", help="prepared multi-label dataset of the SVM protocols (optional)")
    p.add_argument("--pretrain", default="", help="pretrain stage output (optional)")
    p.add_argument("--dataset", default="", help="prepared dataset (optional)")
    p.add_argument("--title", default="SSL benchmark report")
    p.add_argument("--history", default="", help="JSON-lines trend file to add this run to (local or s3://)")
    return p


if __name__ == "__main__":
    sys.exit(run_cli(build_parser(), report))
