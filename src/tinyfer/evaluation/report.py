"""Reports as one list of blocks, rendered as ``report.md`` and as a self-contained
``report.html`` (figures embedded): the renderer, and the report of one evaluation (the
experiment's report is ``tinyfer.experiments.report``'s)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

Block = tuple  # ("h1"|"h2"|"p"|"pre", text) | ("table", header, rows) | ("img", file, caption)


def pct(x: float) -> str:
    """A fraction as a percentage with one decimal."""
    return f"{100 * x:.1f}"


def p_text(p: float | None) -> str:
    """A p-value as a report shows it."""
    return "n/a" if p is None else (f"{p:.2g}" if p >= 1e-4 else "<1e-4")


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
            ["accuracy", f"{pct(m['accuracy'])}%"],
            ["balanced accuracy", f"{pct(m['balanced_accuracy'])}%"],
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
