"""The experiment report: one list of blocks rendered as ``report.md`` and as a
self-contained ``report.html`` (figures embedded)."""

from __future__ import annotations

import base64
import csv
import html
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from tinyfer.evaluation.figures import _plt, _save, plot_confusion

Block = tuple  # ("h1"|"h2"|"p"|"pre", text) | ("table", header, rows) | ("img", file, caption)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _p(p: float | None) -> str:
    return "n/a" if p is None else (f"{p:.2g}" if p >= 1e-4 else "<1e-4")


def plot_fold_scores(results: dict, path: Path) -> Path:
    """Accuracy of every fold, one column per variant, with the mean and its 95% CI."""
    plt = _plt()
    names = list(results["variants"])
    fig, ax = plt.subplots(figsize=(1.6 + 1.7 * len(names), 3.8))
    for i, name in enumerate(names):
        v = results["variants"][name]
        accs = np.array(v["fold_accuracy"])
        jitter = np.linspace(-0.12, 0.12, len(accs)) if len(accs) > 1 else [0]
        ax.scatter(i + np.asarray(jitter), accs, s=14, alpha=0.6)
        lo, hi = v["accuracy"]["ci95"]
        mean = v["accuracy"]["mean"]
        if np.isfinite(lo):
            ax.errorbar(
                i + 0.3, mean, yerr=[[mean - lo], [hi - mean]], fmt="o", color="black", capsize=4
            )
    ax.set_xticks(range(len(names)), [n.replace(",", "\n") for n in names], fontsize=8)
    ax.set(ylabel="test accuracy per fold", ylim=(0, 1.02))
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_learning_curves(exp_dir: Path, names: list[str], path: Path) -> Path:
    """Validation accuracy per epoch, mean over folds, one line per variant."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name in names:
        curves = []
        for hist in sorted((exp_dir / "runs" / name).glob("repeat*/fold*/history.csv")):
            with hist.open() as f:
                curves.append([float(r["val_acc"]) for r in csv.DictReader(f) if r.get("val_acc")])
        if not curves:
            continue
        length = max(map(len, curves))
        # Folds stop early at different epochs: average those still running.
        grid = np.full((len(curves), length), np.nan)
        for i, c in enumerate(curves):
            grid[i, : len(c)] = c
        ax.plot(np.arange(length), np.nanmean(grid, 0), label=name)
    ax.set(xlabel="epoch", ylabel="validation accuracy (mean over folds)", ylim=(0, 1))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


SIZE_KEY = "split.train_subjects"


def plot_dataset_size(results: dict, path: Path) -> Path:
    """Test accuracy (mean over folds, 95% CI) against the number of training subjects per
    fold, one line per combination of the grid's other keys."""
    plt = _plt()
    lines: dict[str, list[tuple[int, dict]]] = {}
    for v in results["variants"].values():
        others = ",".join(f"{k.split('.')[-1]}={x}" for k, x in v["settings"].items()
                          if k != SIZE_KEY)  # fmt: skip
        lines.setdefault(others, []).append((int(v["settings"][SIZE_KEY]), v["accuracy"]))
    sizes = sorted({n for points in lines.values() for n, _ in points}, key=lambda n: n or 1e9)
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for label, points in lines.items():
        points.sort(key=lambda p: sizes.index(p[0]))
        x = [sizes.index(n) for n, _ in points]
        mean = np.array([a["mean"] for _, a in points])
        lo = np.array([a["ci95"][0] for _, a in points])
        hi = np.array([a["ci95"][1] for _, a in points])
        ax.errorbar(x, mean, yerr=[mean - lo, hi - mean], marker="o", capsize=4,
                    label=label or None)  # fmt: skip
    ax.set_xticks(range(len(sizes)), [str(n) if n else "all" for n in sizes])
    ax.set(xlabel="training subjects per fold", ylabel="test accuracy (mean over folds)",
           ylim=(0, 1.02))  # fmt: skip
    ax.grid(alpha=0.3)
    if any(lines):
        ax.legend(fontsize=7)
    return _save(fig, path)


def build_blocks(exp_dir: Path, results: dict, protocol: dict, cfg) -> list[Block]:
    figs = exp_dir / "figures"
    figs.mkdir(exist_ok=True)
    names = list(results["variants"])
    blocks: list[Block] = [("h1", f"Experiment: {Path(protocol['dataset'] or '').name}")]
    command = (exp_dir / "command.txt").read_text().strip()
    blocks += [
        ("h2", "Protocol"),
        (
            "table",
            ["item", "value"],
            [
                ["dataset", f"{protocol['dataset']} ({protocol['format']})"],
                ["samples / subjects", f"{protocol['samples']} / {protocol['subjects']}"],
                ["classes", ", ".join(protocol["labels"])],
                ["frames", protocol["frames"] or "all images"],
                [
                    "split",
                    f"{protocol['folds']} folds, "
                    + {
                        "subject": "subject-grouped, class-stratified",
                        "loso": "one per subject (leave one subject out)",
                    }.get(protocol["protocol"], "RANDOM by image"),
                ],
                ["repeats (seeds)", f"{protocol['repeats']} ({protocol['seeds']})"],
                ["test faces per fold", str(protocol["fold_sizes"][0])],
                ["subjects per fold", str(protocol["subjects_per_fold"][0])],
                [
                    "validation",
                    f"{cfg.split.val_fraction:.0%} of each training fold, "
                    "subject-disjoint; early stopping and model selection on it",
                ],
                ["model", f"{cfg.model.name}"],
            ],
        ),
        ("p", "Command:"),
        ("pre", command),
        ("p", "Configuration (each variant changes only its grid keys):"),
        ("pre", (exp_dir / "config.yaml").read_text().strip()),
    ]
    if protocol["protocol"] == "random":
        blocks.append(
            (
                "p",
                "**Leakage warning**: folds were drawn by image, so frames of one "
                "subject (near-identical on sequence data) are in training and test "
                "at once. These accuracies are inflated; they are reported only to "
                "measure by how much.",
            )
        )
    rows = []
    for name in names:
        v = results["variants"][name]
        a, f = v["accuracy"], v["macro_f1"]
        rows.append(
            [
                name,
                f"{_pct(a['mean'])} ± {_pct(a['std'])}",
                f"[{_pct(a['ci95'][0])}, {_pct(a['ci95'][1])}]",
                f"{_pct(f['mean'])} ± {_pct(f['std'])}",
                _pct(v["pooled"]["accuracy"]),
            ]
        )
    blocks += [
        ("h2", "Results"),
        (
            "table",
            ["variant", "accuracy % (mean ± sd)", "95% CI", "macro-F1 %", "pooled accuracy %"],
            rows,
        ),
        (
            "img",
            plot_fold_scores(results, figs / "fold_scores.png"),
            "Test accuracy of each fold; black: mean and 95% confidence interval.",
        ),
    ]
    if any(SIZE_KEY in v["settings"] for v in results["variants"].values()):
        blocks += [
            ("h2", "What the number of training subjects buys"),
            (
                "img",
                plot_dataset_size(results, figs / "dataset_size.png"),
                "Test accuracy against the training subjects of each fold (drawn from its "
                "training part, nested: fewer subjects are a subset of more); the test "
                "subjects are the same at every size.",
            ),
        ]
    if results["claims"]:
        blocks.append(("h2", "The claims on these data"))
        blocks.append(
            (
                "table",
                [
                    "claim",
                    "variant vs twin",
                    "Δ accuracy, points [95% CI]",
                    "p (test)",
                    "McNemar p",
                    "verdict",
                ],
                [
                    [
                        c["claim"],
                        f"{c['with']} vs {c['against']}",
                        f"{100 * c['effect']:+.1f} [{100 * c['ci95'][0]:+.1f}, "
                        f"{100 * c['ci95'][1]:+.1f}]",
                        f"{_p(c['p_value'])} ({c['test']})",
                        _p(c["mcnemar_p"]),
                        f"{c['verdict']}: {c['why']}",
                    ]
                    for c in results["claims"]
                ],
            )
        )
        blocks.append(
            (
                "p",
                "A claimed difference is supported when the 95% confidence interval of the "
                "paired per-fold differences excludes 0 in its direction; a claimed equivalence "
                "when the 90% interval lies inside the stated margin (two one-sided tests at "
                "0.05). Anything else is inconclusive: a difference these folds cannot show "
                "is not evidence that there is none.",
            )
        )
    blocks += [
        ("h2", "Comparisons"),
        (
            "table",
            [
                "A",
                "B",
                "Δ accuracy (A−B, points)",
                "test",
                "p",
                "Cohen's d_z",
                "McNemar: only A / only B right",
                "McNemar p",
            ],
            [
                [
                    c["a"],
                    c["b"],
                    f"{100 * c['accuracy']['mean_difference']:+.1f}",
                    c["accuracy"]["test"],
                    _p(c["accuracy"]["p_value"]),
                    "n/a"
                    if c["accuracy"]["cohens_dz"] is None
                    else f"{c['accuracy']['cohens_dz']:.2f}",
                    f"{c['mcnemar']['only_a_correct']} / {c['mcnemar']['only_b_correct']}",
                    _p(c["mcnemar"]["p_value"]),
                ]
                for c in results["comparisons"]
            ],
        ),
    ]
    blocks.append(("h2", "Per-class F1 (pooled over folds)"))
    labels = protocol["labels"]
    blocks.append(
        (
            "table",
            ["variant", *labels],
            [
                [
                    n,
                    *(
                        f"{results['variants'][n]['pooled']['per_class'][lab]['f1']:.2f}"
                        for lab in labels
                    ),
                ]
                for n in names
            ],
        )
    )
    blocks.append(("h2", "Confusion matrices (pooled over folds)"))
    for i, name in enumerate(names):
        fig = plot_confusion(
            np.array(results["variants"][name]["pooled"]["confusion"]),
            labels,
            figs / f"confusion_{i}.png",
            title=name,
        )
        blocks.append(("img", fig, f"{name}: rows are true classes."))
    blocks += [
        ("h2", "Learning curves"),
        (
            "img",
            plot_learning_curves(exp_dir, names, figs / "learning_curves.png"),
            "Validation accuracy per epoch, mean over folds (folds that stopped early drop out).",
        ),
    ]
    recon = sorted((exp_dir / "runs").glob("*/repeat0/fold00/reconstructions.png"))
    if recon:
        blocks.append(("h2", "Autoencoder reconstructions (phase 1, fold 0)"))
        blocks += [
            ("img", path, f"{path.parts[-4]}: validation faces and their reconstructions.")
            for path in recon
        ]
    return blocks


def to_markdown(blocks: list[Block], base: Path) -> str:
    out = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2"):
            out.append(("# " if kind == "h1" else "## ") + rest[0])
        elif kind == "p":
            out.append(rest[0])
        elif kind == "pre":
            out.append(f"```\n{rest[0]}\n```")
        elif kind == "table":
            header, rows = rest
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "---|" * len(header))
            out.extend("| " + " | ".join(map(str, r)) + " |" for r in rows)
        elif kind == "img":
            out.append(f"![{rest[1]}]({Path(rest[0]).relative_to(base)})\n\n*{rest[1]}*")
        out.append("")
    return "\n".join(out)


def to_html(blocks: list[Block]) -> str:
    body = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{html.escape(rest[0])}</{kind}>")
        elif kind == "p":
            text = html.escape(rest[0])
            while "**" in text:
                text = text.replace("**", "<b>", 1).replace("**", "</b>", 1)
            body.append(f"<p>{text}</p>")
        elif kind == "pre":
            body.append(f"<pre>{html.escape(rest[0])}</pre>")
        elif kind == "table":
            header, rows = rest
            head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
            cells = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                for r in rows
            )
            body.append(f"<table><tr>{head}</tr>{cells}</table>")
        elif kind == "img":
            data = base64.b64encode(Path(rest[0]).read_bytes()).decode()
            body.append(
                f'<figure><img src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(rest[1])}</figcaption></figure>"
            )
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;"
        "padding:4px 8px;font-size:14px}th{background:#eee}img{max-width:100%}"
        "pre{background:#f4f4f4;padding:8px;white-space:pre-wrap}"
        "figcaption{font-size:13px;color:#444}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>tinyfer report</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    )


def write_blocks(out_dir: Path, blocks: list[Block]) -> Path:
    """Render ``blocks`` as report.md (figures beside it) and a self-contained report.html."""
    (out_dir / "report.md").write_text(to_markdown(blocks, out_dir))
    (out_dir / "report.html").write_text(to_html(blocks))
    return out_dir / "report.md"


def write_report(exp_dir: Path, results: dict[str, Any], protocol: dict, cfg) -> Path:
    """The experiment's report."""
    return write_blocks(exp_dir, build_blocks(exp_dir, results, protocol, cfg))


def write_eval_report(out_dir: Path, report: dict[str, Any]) -> Path:
    """The report of one evaluation (e.g. cross-dataset): scores, per class, figures."""
    m = report
    blocks: list[Block] = [
        ("h1", f"Evaluation: {Path(m['model']).parent.name} on {Path(m['data']).name}"),
        ("table", ["item", "value"], [
            ["model", m["model"]], ["data", f"{m['data']} (split: {m['split']})"],
            ["faces evaluated", str(m["n"])],
            ["class prior of the predictions", m.get("prior", "training")],
            ["left out (classes the model does not know)",
             ", ".join(f"{k}: {v}" for k, v in m["excluded_unknown_labels"].items()) or "none"],
            ["not evaluated (preparation could not use them)",
             ", ".join(f"{k}: {v}" for k, v in (m.get("not_evaluated") or {}).get("counts", {})
                       .items()) or "none"],
            ["left out (pixel-identical copy in another split)",
             f"{m['excluded_copies']['n']} (copies of {m['excluded_copies']['of']})"
             if m.get("excluded_copies") else "none"],
            ["accuracy", f"{_pct(m['accuracy'])}%"],
            ["balanced accuracy", f"{_pct(m['balanced_accuracy'])}%"],
            [f"macro-F1 (over the {len(m['macro_f1_over'])} classes present)",
             f"{m['macro_f1']:.3f}"],
            ["expected calibration error", f"{m['ece']:.3f}"],
        ]),
        ("p", "Command:"), ("pre", m["command"]),
        ("h2", "Per class"),
        ("table", ["class", "precision", "recall", "F1", "support"],
         [[k, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", str(v["support"])]
          for k, v in m["per_class"].items()]),
        ("img", out_dir / "confusion.png", "Confusion matrix: rows are true classes."),
        ("img", out_dir / "misclassified.png", "The most confident mistakes: true -> predicted."),
    ]  # fmt: skip
    return write_blocks(out_dir, blocks)
