"""The benchmarks' results in the seed's table shapes (its "Models and Benchmarks" pages), their
plots, and the one-table summary that `make run` prints. Inputs are the stages' metrics.json dicts
(fractions in [0, 1]; JSON keys are strings)."""
from __future__ import annotations

ROW_NAMES = {"pretrained": "pretrained backbone", "random_init": "same backbone, random init",
             "raw_pixels": "raw pixels"}
SEED_LAYER_NAMES = {"feat1": "Feature1", "feat2": "Feature2", "feat3": "Feature3", "feat4": "Feature4",
                    "feat5": "Feature5", "avgpool": "AvgPool", "patch_mean": "PatchMean"}


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _header(cells, numeric_from: int = 1) -> list[str]:
    return [_row(cells), _row(["---"] * numeric_from + ["---:"] * (len(cells) - numeric_from))]


def _by_int(d: dict) -> dict:
    return {int(k): v for k, v in d.items()}


def knn_table(knn: dict) -> str:
    ks = knn["ks"]
    lines = _header(["features"] + [f"k={k}" for k in ks])
    for name, res in knn["results"].items():
        top1 = _by_int(res["top1"])
        lines.append(_row([ROW_NAMES.get(name, name)] + [pct(top1[k]) for k in ks]))
    return "\n".join(lines)


def svm_table(model: str, svm: dict | None, low_shot: dict | None) -> str:
    """The seed's VOC SVM / Low-shot SVM row: Best Layer, SVM mAP, low-shot mAP for k = 1 ... 96
    (the cost with the best mean test mAP over the samples, as the seed reports it)."""
    ks = [int(k) for k in low_shot["ks"]] if low_shot else []
    lines = _header(["Model", "Best Layer", "SVM"] + [f"k={k}" for k in ks], numeric_from=2)
    best = svm["best_layer"] if svm else low_shot["best_layer"]
    cells = [model, SEED_LAYER_NAMES.get(best, best), pct(svm["layers"][best]["mAP"]) if svm else "-"]
    if low_shot:
        by_k = _by_int(low_shot["layers"][low_shot["best_layer"]]["best_cost"])
        cells += [pct(by_k[k]["mean"]) for k in ks]
    return "\n".join(lines + [_row(cells)])


def svm_layers_table(svm: dict) -> str:
    layers = list(svm["layers"])
    lines = _header(["", *(SEED_LAYER_NAMES.get(layer, layer) for layer in layers)])
    return "\n".join(lines + [_row(["VOC07 SVM mAP"] + [pct(svm["layers"][layer]["mAP"]) for layer in layers])])


def low_shot_table(low_shot: dict) -> str:
    """Per k: the seed's figure (cost chosen on test, mean +- std over samples) and ours with the
    cost chosen by cross-validation on the training sample."""
    layer = low_shot["best_layer"]
    res = low_shot["layers"][layer]
    best, cv = _by_int(res["best_cost"]), _by_int(res.get("cv_cost", {}))
    ks = [int(k) for k in low_shot["ks"]]
    lines = _header(["cost chosen", *(f"k={k}" for k in ks)])
    lines.append(_row(["on test (the seed's figure)"] + [f"{pct(best[k]['mean'])} ± {pct(best[k]['std'])}"
                                                           for k in ks]))
    if cv:
        lines.append(_row(["by CV on the training sample"] + [f"{pct(cv[k]['mean'])} ± {pct(cv[k]['std'])}"
                                                              for k in ks]))
    return "\n".join(lines)


def linear_table(model: str, linear: dict) -> str:
    heads = linear["heads"]
    layers = [layer for layer in SEED_LAYER_NAMES if layer in heads]
    lines = _header(["Model", *(SEED_LAYER_NAMES[layer] for layer in layers)])
    return "\n".join(lines + [_row([model] + [pct(heads[layer]["top1"]) for layer in layers])])


def fast_linear_table(fast: dict) -> str:
    lines = _header(["layer", "lr", "weight decay", "val top-1", "test top-1", "test top-5"])
    for layer, res in fast["per_layer"].items():
        lines.append(_row([SEED_LAYER_NAMES.get(layer, layer), res["lr"], res["weight_decay"], pct(res["val_top1"]),
                           pct(res["test_top1"]), pct(res.get("test_top5"))]))
    return "\n".join(lines)


def semi_table(model: str, semi: dict) -> str:
    lines = _header(["Model", "labelled", "Fine-tuned setting", "Top-1 (%)", "Top-5 (%)"], numeric_from=3)
    for fraction, res in semi["fractions"].items():
        b = res["best"]
        lines.append(_row([model, f"{100 * float(fraction):g}% ({res.get('num_labelled', '?')} images)",
                           f"lr {b['lr']:g}, head x{b['head_lr_mult']:g}", pct(b["top1"]), pct(b["top5"])]))
    return "\n".join(lines)


def finetune_table(model: str, ft: dict) -> str:
    """The seed's MIM table shape (Backbone | Fine-tuning Top-1 | config), a row per backbone init."""
    lines = _header(["Model", "Fine-tuning config", "Epochs", "Top-1 (%)", "Top-5 (%)"], numeric_from=2)
    config = ft.get("config", "").rsplit("/", 1)[-1].removesuffix(".py")
    for name, res in (("pretrained", ft["pretrained"]), ("random_init", ft.get("baseline"))):
        if res:
            lines.append(_row([model if name == "pretrained" else ROW_NAMES.get(name, name), config,
                               res["epochs_run"], pct(res["top1"]), pct(res["top5"])]))
    return "\n".join(lines)


# The seed's detection / segmentation table columns (metrics key, column), per benchmark; values in %.
DETSEG_COLUMNS = {
    "voc0712": [("mAP", "mAP"), ("AP50", "AP50")],
    "coco": [("bbox_mAP", "mAP(Box)"), ("bbox_AP50", "AP50(Box)"), ("bbox_AP75", "AP75(Box)"),
             ("segm_mAP", "mAP(Mask)"), ("segm_AP50", "AP50(Mask)"), ("segm_AP75", "AP75(Mask)")],
    "voc12aug": [("mIoU", "mIOU")],
    "cityscapes": [("mIoU", "mIOU")],
}
DETSEG_NAMES = {"voc0712": "Pascal VOC 2007 + 2012", "coco": "COCO2017", "voc12aug": "Pascal VOC 2012 + Aug",
                "cityscapes": "Cityscapes"}


def points(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def detseg_table(model: str, res: dict) -> str:
    """The seed's detection / segmentation table: Model | Config | its metrics, one row per backbone."""
    columns = DETSEG_COLUMNS[res["benchmark"]]
    lines = _header(["Model", "Config"] + [name for _, name in columns], numeric_from=2)
    config = res.get("config", "").rsplit("/", 1)[-1].removesuffix(".py")
    for name, values in res["results"].items():
        label = model if name == "pretrained" else ROW_NAMES.get(name, name)
        lines.append(_row([label, config] + [points(values.get(key)) for key, _ in columns]))
    return "\n".join(lines)


def summary_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """(benchmark, what, pretrained, baselines) per protocol that ran: the one table of `make run`."""
    rows = []
    knn = results.get("knn")
    if knn:
        k = knn.get("margin_over_random_init", {}).get("k") or knn["ks"][0]
        r = knn["results"]
        base = ", ".join(f"{n.replace('_', ' ')} {pct(r[n]['top1'][str(k)])}" for n in ("random_init", "raw_pixels")
                         if n in r)
        rows.append((f"kNN (k={k})", "top-1 %", pct(r["pretrained"]["top1"][str(k)]), base))
    svm = results.get("svm")
    if svm:
        best = svm["best_layer"]
        rows.append(("VOC07 SVM", f"mAP %, best layer {best}", pct(svm["layers"][best]["mAP"]), ""))
    low = results.get("low_shot_svm")
    if low:
        res = low["layers"][low["best_layer"]]
        ks = [int(k) for k in low["ks"]]
        for k in (ks[0], ks[-1]):
            cv = res.get("cv_cost", {}).get(str(k))
            rows.append((f"low-shot SVM (k={k})", f"mAP %, {low['best_layer']}", pct(res["best_cost"][str(k)]["mean"]),
                         f"cost by CV {pct(cv['mean'])}" if cv else ""))
    linear = results.get("linear")
    if linear:
        best = linear["best_layer"]
        rows.append(("linear (seed protocol)", f"top-1 %, best head {best}", pct(linear["heads"][best]["top1"]),
                     f"{linear.get('epochs')} epochs"))
    fast = results.get("fast_linear")
    if fast:
        c = fast["chosen"]
        rows.append(("fast linear (cached)", f"top-1 %, {c['layer']} lr {c['lr']:g} wd {c['weight_decay']:g}",
                     pct(c["test_top1"]), f"{len(fast['sweep'])} heads in one pass"))
    semi = results.get("semi")
    if semi:
        for fraction, res in semi["fractions"].items():
            b = res["best"]
            rows.append((f"semi-supervised {100 * float(fraction):g}%",
                         f"top-1 %, lr {b['lr']:g} head x{b['head_lr_mult']:g}", pct(b["top1"]), ""))
    ft = results.get("finetune")
    if ft:
        base = ft.get("baseline")
        rows.append(("fine-tuning", f"top-1 %, {ft['epochs']} epochs, {ft['num_train']} images", pct(ft["top1"]),
                     f"random init {pct(base['top1'])}" if base else ""))
    for protocol in ("detection", "segmentation"):
        res = results.get(protocol)
        if res:
            key, column = DETSEG_COLUMNS[res["benchmark"]][0]
            pre, base = res["results"]["pretrained"], res["results"].get("random_init")
            rows.append((f"{protocol} ({res['benchmark']})", f"{column} %, {res.get('iters')} iterations",
                         points(pre.get(key)), f"random init {points(base.get(key))}" if base else ""))
    return rows


def summary_text(results: dict) -> str:
    rows = [("benchmark", "measure", "pretrained", "beside it")] + summary_rows(results)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) if i != 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
                     for r in rows)


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(6, 3.5))


def _save(plt, fig, ax, path) -> None:
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_knn(knn: dict, path) -> None:
    plt, fig, ax = _figure()
    for name, res in knn["results"].items():
        top1 = sorted((int(k), 100 * v) for k, v in res["top1"].items())
        ax.plot([k for k, _ in top1], [v for _, v in top1], marker="o", label=ROW_NAMES.get(name, name))
    ax.set_xscale("log")
    ax.set_xlabel("k")
    ax.set_ylabel("kNN top-1 (%)")
    _save(plt, fig, ax, path)


def plot_low_shot(low_shot: dict, path) -> None:
    plt, fig, ax = _figure()
    ks = [int(k) for k in low_shot["ks"]]
    for layer, res in low_shot["layers"].items():
        mean = [100 * res["best_cost"][str(k)]["mean"] for k in ks]
        std = [100 * res["best_cost"][str(k)]["std"] for k in ks]
        ax.errorbar(ks, mean, yerr=std, marker="o", capsize=3, label=SEED_LAYER_NAMES.get(layer, layer))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("positives per class (k)")
    ax.set_ylabel("low-shot SVM mAP (%)")
    _save(plt, fig, ax, path)


def plot_layers(series: dict[str, dict[str, float]], ylabel: str, path) -> None:
    """Bars per layer (feat1 ... avgpool) for each named series, e.g. linear and fast linear top-1."""
    plt, fig, ax = _figure()
    layers = [layer for layer in SEED_LAYER_NAMES if any(layer in s for s in series.values())]
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [j + i * width for j, layer in enumerate(layers) if layer in values]
        ax.bar(xs, [100 * values[layer] for layer in layers if layer in values], width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(layers))], [SEED_LAYER_NAMES[layer] for layer in layers])
    ax.set_ylabel(ylabel)
    _save(plt, fig, ax, path)


def plot_semi(semi: dict, path) -> None:
    plt, fig, ax = _figure()
    for fraction, res in semi["fractions"].items():
        grid = sorted(res["grid"], key=lambda g: (g["lr"], g["head_lr_mult"]))
        ax.plot(range(len(grid)), [100 * g["top1"] for g in grid], marker="o", label=f"{100 * float(fraction):g}%")
        ax.set_xticks(range(len(grid)), [f"{g['lr']:g}\nx{g['head_lr_mult']:g}" for g in grid], fontsize=7)
    ax.set_xlabel("lr, head lr multiplier")
    ax.set_ylabel("top-1 (%)")
    _save(plt, fig, ax, path)


def plot_finetune(ft: dict, path) -> None:
    """Training loss per epoch, pretrained beside random init."""
    plt, fig, ax = _figure()
    for name, res in (("pretrained", ft["pretrained"]), ("random_init", ft.get("baseline"))):
        if res:
            ax.plot(range(1, len(res["train_loss"]) + 1), res["train_loss"], marker="o", label=ROW_NAMES.get(name, name))
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (mixed, smoothed targets)")
    _save(plt, fig, ax, path)


def plot_detseg(res: dict, path) -> None:
    """Bars of each metric of the seed's table, pretrained backbone beside random init."""
    plt, fig, ax = _figure()
    columns = DETSEG_COLUMNS[res["benchmark"]]
    width = 0.8 / max(1, len(res["results"]))
    for i, (name, values) in enumerate(res["results"].items()):
        ax.bar([j + i * width for j in range(len(columns))], [values.get(key) or 0 for key, _ in columns], width,
               label=ROW_NAMES.get(name, name))
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(columns))], [name for _, name in columns])
    ax.set_ylabel("%")
    _save(plt, fig, ax, path)
