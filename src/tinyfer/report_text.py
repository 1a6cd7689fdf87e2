"""Terminal summaries (rich tables) of what the data commands found."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from tinyfer.core.audit import Audit
from tinyfer.core.datasets import Problem
from tinyfer.core.prepare import Prepared
from tinyfer.core.terminal import console as make_console
from tinyfer.core.terminal import styled

_SHOW = 10  # problems listed by name before the rest are only counted


def _problem_lines(console: Console, problems: list, title: str) -> None:
    if not problems:
        return
    kinds = Counter(p.kind for p in problems)
    console.print(styled(f"{title}:", "bold", ", ".join(f"{k} {n}" for k, n in kinds.items())))
    for p in problems[:_SHOW]:
        console.print(f"  {p.kind}: {p.path}: {p.message}", highlight=False)
    if len(problems) > _SHOW:
        console.print(f"  ... and {len(problems) - _SHOW} more (see --json or the manifest)")


def print_audit(audit: Audit) -> None:
    console = make_console()
    console.print(styled(str(audit.root), "bold", f"({audit.format}): {audit.samples} images"))
    labels = sorted({name for c in audit.counts.values() for name in c})
    table = Table("split", *labels, "total")
    for split, c in audit.counts.items():
        table.add_row(split, *(str(c.get(n, 0)) for n in labels), str(sum(c.values())))
    if audit.subjects:
        table.add_row("subjects", *(str(audit.subjects.get(n, 0)) for n in labels),
                      str(audit.subjects_total))  # fmt: skip
    console.print(table)
    console.print(f"image sizes: {audit.image_sizes}; modes: {audit.image_modes}")
    console.print(
        f"exact duplicates: {audit.duplicate_groups} groups holding {audit.duplicate_files} files"
        f"; groups within one split: {audit.duplicates_within_split or 0}"
    )
    if audit.cross_split_copies:
        n = sum(audit.cross_split_copies.values())
        console.print(f"test images with an exact copy in training: {n} {audit.cross_split_copies}")
    console.print(f"duplicate groups with conflicting labels: {len(audit.conflicting_groups)}")
    for group in audit.conflicting_groups[:3]:
        labels = dict(Counter(label for _, label in group))
        console.print(f"  {len(group)} copies of {group[0][0]}: {labels}", highlight=False)
    console.print(f"almost blank images: {len(audit.near_blank)}")
    for path in audit.near_blank[:_SHOW]:
        console.print(f"  {path}", highlight=False)
    if len(audit.near_blank) > _SHOW:
        console.print(f"  ... and {len(audit.near_blank) - _SHOW} more (see --json)")
    console.print(f"unreadable files: {len(audit.unreadable)}")
    _problem_lines(console, audit.unreadable, "unreadable")
    _problem_lines(console, audit.reader_problems, "left out while reading")


def print_prepared(prepared: Prepared) -> None:
    console = make_console()
    m = prepared.manifest
    summary = (
        f"({m['format']}, detector {m['detector']}): {m['samples_kept']} of "
        f"{m['samples_read']} samples kept as {prepared.img_size}x{prepared.img_size} crops in "
        f"{m['seconds']} s"
    )
    console.print(styled(str(m["root"]), "bold", summary))
    table = Table(*m["labels"], "total")
    table.add_row(*(str(m["counts"][n]) for n in m["labels"]), str(m["samples_kept"]))
    console.print(table)
    if m.get("subjects"):
        console.print(f"subjects: {m['subjects']}")
    if any(m["splits"]):
        console.print(f"splits: {m['splits']}")
    if m.get("multiple_faces"):
        console.print(f"frames with several faces (largest taken): {m['multiple_faces']}")
    _problem_lines(console, [Problem(**p) for p in m["problems"]], "problems")
    console.print(f"arrays: {prepared.file}")


def print_evaluation(result, out_dir) -> None:
    console = make_console()
    m = result.metrics
    console.print(
        f"n={m['n']}: accuracy {m['accuracy']:.4f}, balanced accuracy "
        f"{m['balanced_accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f} (over the "
        f"{len(m['macro_f1_over'])} classes present), ECE {m['ece']:.4f}"
    )
    table = Table("class", "precision", "recall", "F1", "support")
    for name, r in m["per_class"].items():
        table.add_row(
            name, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", str(r["support"])
        )
    console.print(table)
    if result.excluded:
        console.print(f"left out (classes the model does not know): {result.excluded}")
    if result.not_evaluated:
        counts = result.not_evaluated["counts"]
        console.print(
            f"not evaluated ({sum(counts.values())} samples preparation could not use): "
            + ", ".join(f"{k}: {v}" for k, v in counts.items())
        )
        for p in result.not_evaluated["examples"][:5]:
            console.print(f"  {p['path']}: {p['message']}", highlight=False, soft_wrap=True)
    console.print(
        f"results: {out_dir} (report.html, report.md, metrics.json, confusion and mistakes PNGs)"
    )
