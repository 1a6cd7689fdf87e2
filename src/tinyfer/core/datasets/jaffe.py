"""JAFFE: flat files such as ``KA.AN1.39.tiff`` (subject KA, expression AN, take 1, id 39)."""

from __future__ import annotations

import re
from pathlib import Path

from tinyfer.core.datasets.base import Problem, Sample, Scan, image_files, require_dir
from tinyfer.core.labels import canonical_label
from tinyfer.errors import DatasetError

_NAME = re.compile(r"^([A-Za-z]+)\.([A-Za-z]{2})(\d*)\.(\d+)$")
CODES = ("AN", "DI", "FE", "HA", "NE", "SA", "SU")


def read_jaffe(root: str | Path) -> Scan:
    """Read a JAFFE folder; files whose names do not follow the pattern are problems."""
    root = require_dir(root, what="JAFFE images such as KA.AN1.39.tiff")
    samples: list[Sample] = []
    problems: list[Problem] = []
    for path in image_files(root):
        m = _NAME.match(path.stem)
        if not m or m.group(2).upper() not in CODES:
            problems.append(
                Problem(str(path), "bad_name", f"not <subject>.<{'|'.join(CODES)}><n>.<id>")
            )
            continue
        subject, code, take, _ = m.groups()
        samples.append(
            Sample(
                str(path),
                canonical_label(code),
                subject=subject,
                take=f"{subject}.{code}{take}",
                frame=0,
            )
        )
    if not samples:
        raise DatasetError(f"{root}: no JAFFE images (expected names like KA.AN1.39.tiff)")
    return Scan(format="jaffe", root=str(root), samples=samples, problems=problems)
