"""The experiment's report: its protocol, results, claims, comparisons and figures, as
blocks that ``tinyfer.evaluation.report`` renders as report.md and report.html."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from tinyfer.evaluation.figures import _save, plot_confusion, plt_module
from tinyfer.evaluation.report import Block, p_text, pct, write_blocks


def plot_fold_scores(results: dict, path: Path) -> Path:
    """Accuracy of every fold, one column per variant, with the mean and its 95% CI."""
    plt = plt_module()
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


def plot_learning_curves(runs: dict[str, list[Path]], names: list[str], path: Path) -> Path:
    """Validation accuracy per epoch, mean over folds, one line per variant."""
    plt = plt_module()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name in names:
        curves = []
        for hist in (f / "history.csv" for f in runs[name] if (f / "history.csv").is_file()):
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
    plt = plt_module()
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


def build_blocks(
    exp_dir: Path, results: dict, protocol: dict, cfg, runs: dict[str, list[Path]], command: str
) -> list[Block]:
    """The report's blocks; ``runs``: each variant's fold folders (repeat 0's first),
    ``command``: the command that started the experiment."""
    figs = exp_dir / "figures"
    figs.mkdir(exist_ok=True)
    names = list(results["variants"])
    return [
        ("h1", f"Experiment: {Path(protocol['dataset'] or '').name}"),
        *_protocol_blocks(exp_dir, protocol, cfg, command),
        *_results_blocks(results, names, figs),
        *_claims_blocks(results["claims"]),
        *_comparison_blocks(results["comparisons"]),
        *_class_blocks(results, names, protocol["labels"], figs),
        *_training_blocks(runs, names, figs),
    ]


def _protocol_blocks(exp_dir: Path, protocol: dict, cfg, command: str) -> list[Block]:
    """What was run: data, split, seeds, model, command and config."""
    blocks: list[Block] = []
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
    return blocks


def _results_blocks(results: dict, names: list[str], figs: Path) -> list[Block]:
    """Accuracy per variant, the folds' scores, the dataset-size curve when asked for."""
    blocks: list[Block] = []
    rows = []
    for name in names:
        v = results["variants"][name]
        a, f = v["accuracy"], v["macro_f1"]
        rows.append(
            [
                name,
                f"{pct(a['mean'])} ± {pct(a['std'])}",
                f"[{pct(a['ci95'][0])}, {pct(a['ci95'][1])}]",
                f"{pct(f['mean'])} ± {pct(f['std'])}",
                pct(v["pooled"]["accuracy"]),
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
    return blocks


def _claims_blocks(claims: list[dict]) -> list[Block]:
    """The claims the experiment tests, each with its verdict."""
    blocks: list[Block] = []
    if claims:
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
                        f"{p_text(c['p_value'])} ({c['test']})",
                        p_text(c["mcnemar_p"]),
                        f"{c['verdict']}: {c['why']}",
                    ]
                    for c in claims
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
    return blocks


def _comparison_blocks(comparisons: list[dict]) -> list[Block]:
    """Every pair of variants: paired tests on the folds, McNemar on the faces."""
    blocks: list[Block] = []
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
                    p_text(c["accuracy"]["p_value"]),
                    "n/a"
                    if c["accuracy"]["cohens_dz"] is None
                    else f"{c['accuracy']['cohens_dz']:.2f}",
                    f"{c['mcnemar']['only_a_correct']} / {c['mcnemar']['only_b_correct']}",
                    p_text(c["mcnemar"]["p_value"]),
                ]
                for c in comparisons
            ],
        ),
    ]
    return blocks


def _class_blocks(results: dict, names: list[str], labels: list[str], figs: Path) -> list[Block]:
    """Per-class F1 and pooled confusion matrices."""
    blocks: list[Block] = []
    blocks.append(("h2", "Per-class F1 (pooled over folds)"))
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
    return blocks


def _training_blocks(runs: dict[str, list[Path]], names: list[str], figs: Path) -> list[Block]:
    """Learning curves, and phase 1's reconstructions where it ran."""
    blocks: list[Block] = []
    blocks += [
        ("h2", "Learning curves"),
        (
            "img",
            plot_learning_curves(runs, names, figs / "learning_curves.png"),
            "Validation accuracy per epoch, mean over folds (folds that stopped early drop out).",
        ),
    ]
    recon = [(n, runs[n][0] / "reconstructions.png") for n in sorted(runs) if runs[n]]
    recon = [(n, path) for n, path in recon if path.is_file()]
    if recon:
        blocks.append(("h2", "Autoencoder reconstructions (phase 1, fold 0)"))
        blocks += [
            ("img", path, f"{n}: validation faces and their reconstructions.") for n, path in recon
        ]
    return blocks


def write_report(
    exp_dir: Path,
    results: dict[str, Any],
    protocol: dict,
    cfg,
    runs: dict[str, list[Path]],
    command: str,
) -> Path:
    """The experiment's report.md and report.html in ``exp_dir``."""
    return write_blocks(exp_dir, build_blocks(exp_dir, results, protocol, cfg, runs, command))
