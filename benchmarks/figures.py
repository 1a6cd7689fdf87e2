"""Every measured figure in the benchmark README and the model cards must be recorded.

python benchmarks/figures.py [FILE ...]   (default: this README, the model cards and the
                                          "Results in brief" of the project's README)

A figure is a number with a unit (``66.90%``, ``1.07 ms``, ``3.5 MB``, ``150.4 images/s``,
``67 min``) or a bare decimal (``0.711``). It counts as recorded when some number in
``results/*.json``, read at the unit's usual scales (a fraction as a percentage, seconds as
ms, bytes as MB, seconds as minutes), rounds to it at the figure's own precision. Targets
(after ``>=``, ``<=``, ``<``, ``>``), versions (``Python 3.11``) and differences (``+2.6``,
``0.9 points``: each of two recorded figures) are not checked; neither is the README's
"Withdrawn" paragraph. This catches a figure typed by hand or left behind by a
re-measurement; it cannot tell which file a figure came from. Exits 1 and lists the figures
it could not find.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"
DEFAULT_FILES = [HERE / "README.md", *sorted((HERE.parent / "src/tinyfer/assets").glob("*.md")),
                 HERE.parent / "README.md"]  # fmt: skip
#: Files of which only one section holds measured figures (the rest: dataset facts, usage).
SECTIONS = {(HERE.parent / "README.md").resolve(): "## Results in brief"}

# Each unit's scales: what a recorded number is multiplied by to read in the figure's unit.
SCALES = {
    "%": (1.0, 100.0),
    "ms": (1.0, 1000.0),
    "MB": (1.0, 1e-6, 2.0**-20),
    "GB": (1.0, 1e-9, 2.0**-30),
    "s": (1.0,),
    "min": (1.0, 1 / 60),
    "images/s": (1.0,),
    "faces/s": (1.0,),
    "frames/s": (1.0,),
    "": (1.0, 100.0, 1e-6),
}
_UNIT = r"%|ms|MB|GB|images/s|faces/s|frames/s|s\b|min\b"
_NOT_AFTER = r"(?<![\w.+\-±/<>=])(?<!>= )(?<!<= )(?<!< )(?<!> )(?<!Python )(?<!torch )"
_NOT_BEFORE = r"(?! points)"
_WITH_UNIT = re.compile(_NOT_AFTER + rf"(\d[\d,]*(?:\.\d+)?)\s?({_UNIT})" + _NOT_BEFORE)
_BARE = re.compile(
    _NOT_AFTER
    + r"(\d[\d,]*\.\d+|\d{1,3}(?:,\d{3})+)"
    + rf"(?![\d.]*\s?(?:{_UNIT}))(?![\w/])"
    + _NOT_BEFORE
)


def recorded_numbers(results: Path = RESULTS) -> list[float]:
    """Every number in every results file."""
    found: list[float] = []

    def walk(value) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, (int, float)):
            found.append(float(value))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for path in sorted(results.glob("*.json")):
        walk(json.loads(path.read_text()))
    return found


def _blank(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)


def _section(text: str, heading: str) -> str:
    """The text with all but the section under ``heading`` blanked (lines kept)."""
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    end = len(text) if end < 0 else end
    return _blank(text[:start]) + text[start:end] + _blank(text[end:])


def _checked_text(text: str) -> str:
    """The text with the withdrawn figures' paragraph blanked (lines kept for numbering)."""
    paragraphs = re.split(r"(\n\s*\n)", text)
    return "".join(_blank(p) if p.lstrip().startswith("Withdrawn") else p for p in paragraphs)


def unrecorded(text: str, numbers: list[float]) -> list[tuple[int, str]]:
    """(line, figure) for each figure of ``text`` that no recorded number rounds to."""
    text = _checked_text(text)
    missing = []
    for pattern in (_WITH_UNIT, _BARE):
        for match in pattern.finditer(text):
            figure = match.group(1)
            unit = match.group(2) if pattern is _WITH_UNIT else ""
            value = float(figure.replace(",", ""))
            decimals = len(figure.split(".")[1]) if "." in figure else 0
            tolerance = 0.5 * 10**-decimals + 1e-9
            if not any(abs(x * k - value) <= tolerance for x in numbers for k in SCALES[unit]):
                missing.append((text.count("\n", 0, match.start()) + 1, figure + unit))
    return sorted(missing)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, default=DEFAULT_FILES)
    args = parser.parse_args()
    numbers = recorded_numbers()
    bad = 0
    for path in args.files:
        text, heading = path.read_text(), SECTIONS.get(path.resolve())
        if heading:
            text = _section(text, heading)
        for line, figure in unrecorded(text, numbers):
            print(f"{path}:{line}: {figure} is in no results file")
            bad += 1
    print(f"{bad} unrecorded figure(s) in {len(args.files)} file(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
