"""Stage `report`: every figure of the run in `metrics.json`, and `report.md` beside it with the
kNN table (pretrained backbone against its baselines) and a plot; `report.html` is the same page,
self-contained (the plot inlined), for the KFP UI's HTML viewer and for browsers."""
from __future__ import annotations

import argparse
import base64
import html
import json
import re
import sys

from .. import storage
from ..errors import DataError
from ._cli import run_cli

ROW_NAMES = {"pretrained": "pretrained backbone", "random_init": "same backbone, random init",
             "raw_pixels": "raw pixels"}


def _read_json(uri: str, what: str) -> dict:
    if not storage.exists(uri):
        raise DataError(f"{what} not found: {uri}")
    return json.loads(storage.read_text(uri))


def knn_table(knn: dict) -> str:
    ks = knn["ks"]
    lines = ["| features | " + " | ".join(f"k={k}" for k in ks) + " |",
             "| --- | " + " | ".join("---:" for _ in ks) + " |"]
    for name, res in knn["results"].items():
        top1 = {int(k): v for k, v in res["top1"].items()}
        lines.append(f"| {ROW_NAMES.get(name, name)} | " + " | ".join(f"{100 * top1[k]:.2f}" for k in ks) + " |")
    return "\n".join(lines)


def _plot(knn: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, res in knn["results"].items():
        top1 = sorted((int(k), 100 * v) for k, v in res["top1"].items())
        ax.plot([k for k, _ in top1], [v for _, v in top1], marker="o", label=ROW_NAMES.get(name, name))
    ax.set_xscale("log")
    ax.set_xlabel("k")
    ax.set_ylabel("kNN top-1 (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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
                     f"{'-' if e.get('epochs') is None else e['epochs']} | {100 * e['top1']:.2f} | {margin} |")
    return "\n".join(lines)


SKIPPED_SHOWN = 10


def report(knn: str, output: str, pretrain: str = "", dataset: str = "", title: str = "SSL benchmark report",
           history: str = "") -> dict:
    knn_metrics = _read_json(storage.join(knn, "metrics.json"), "kNN metrics")
    pretrain_metrics = _read_json(storage.join(pretrain, "metrics.json"), "pretrain metrics") if pretrain else {}
    manifest = _read_json(storage.join(dataset, "manifest.json"), "dataset manifest") if dataset else {}
    dataset_info = {k: manifest[k] for k in ("source", "num_classes", "counts") if k in manifest}
    if manifest:
        dataset_info["num_skipped"] = len(manifest.get("skipped", []))
    metrics = {"dataset": dataset_info, "pretrain": pretrain_metrics, "knn": knn_metrics}

    md = [f"# {title}", ""]
    if dataset_info:
        skipped = manifest.get("skipped", [])
        md += [f"Dataset: `{dataset_info.get('source')}`, {dataset_info.get('num_classes')} classes, "
               f"counts {json.dumps(dataset_info.get('counts'))}, {len(skipped)} input"
               f"{'' if len(skipped) == 1 else 's'} skipped{':' if skipped else '.'}", ""]
        md += [f"- `{s['input']}`: {s['reason']}" for s in skipped[:SKIPPED_SHOWN]]
        if len(skipped) > SKIPPED_SHOWN:
            md += [f"- ... and {len(skipped) - SKIPPED_SHOWN} more (the dataset's manifest.json lists them all)"]
        md += [""] if skipped else []
    if pretrain_metrics:
        md += [f"Pretraining: {pretrain_metrics.get('epochs')} epochs, {pretrain_metrics.get('iterations')} "
               f"iterations on {pretrain_metrics.get('world_size')} process(es), final loss "
               f"{pretrain_metrics.get('final_loss', float('nan')):.4f}, {pretrain_metrics.get('seconds')} s.", ""]
    md += [f"## kNN top-1 (%), T = {knn_metrics['temperature']}, {knn_metrics['num_train']} train / "
           f"{knn_metrics['num_test']} test images", "", knn_table(knn_metrics), ""]
    margin = knn_metrics.get("margin_over_random_init")
    if margin:
        md += [f"Margin of the pretrained backbone over the same backbone at random init (k={margin['k']}): "
               f"**{100 * margin['top1']:+.2f}** points.", ""]
    md += ["![kNN top-1 against k](knn.png)", ""]
    if history:
        k = margin["k"] if margin else knn_metrics["ks"][0]
        entries = update_history(history, {
            "backbone_sha256": knn_metrics["backbone_sha256"], "algorithm": knn_metrics.get("algorithm"),
            "epochs": knn_metrics.get("epoch"), "k": k,
            "top1": knn_metrics["results"]["pretrained"]["top1"][str(k)],
            "margin": margin["top1"] if margin else None})
        md += [f"## Trend: this run and the ones before it ({history})", "", trend_table(entries, k), ""]
        metrics["history"] = entries
    with storage.publish_dir(output) as staging:
        _plot(knn_metrics, staging / "knn.png")
        (staging / "report.md").write_text("\n".join(md))
        (staging / "report.html").write_text(
            markdown_to_html("\n".join(md), title, {"knn.png": (staging / "knn.png").read_bytes()}))
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return {"report": storage.join(output, "report.md"), "html": storage.join(output, "report.html"),
            "metrics": storage.join(output, "metrics.json"),
            "knn_top1_k20": knn_metrics["results"]["pretrained"]["top1"].get("20")}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ssl_lib.stages.report", description=__doc__)
    p.add_argument("--knn", required=True, help="knn stage output")
    p.add_argument("--output", required=True)
    p.add_argument("--pretrain", default="", help="pretrain stage output (optional)")
    p.add_argument("--dataset", default="", help="prepared dataset (optional)")
    p.add_argument("--title", default="SSL benchmark report")
    p.add_argument("--history", default="", help="JSON-lines trend file to add this run to (local or s3://)")
    return p


if __name__ == "__main__":
    sys.exit(run_cli(build_parser(), report))
