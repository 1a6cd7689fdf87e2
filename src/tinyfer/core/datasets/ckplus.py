"""CK+48: ``<emotion>/S<subject>_<sequence>_<frame>.png`` face crops."""

from __future__ import annotations

import re
from pathlib import Path

from tinyfer.core.datasets.base import Problem, Sample, Scan, labelled_images, require_dir
from tinyfer.errors import DatasetError

_NAME = re.compile(r"^(S\d+)_(\d+)_(\d+)$")


def read_ckplus(root: str | Path, *, skip_unknown: bool = False) -> Scan:
    """Read CK+48 folders; the subject comes from the file name (``S010`` in ``S010_004_...``)."""
    root = require_dir(root, what="CK+48 emotion folders")
    samples: list[Sample] = []
    problems: list[Problem] = []
    for path, label in labelled_images(root, problems, skip_unknown=skip_unknown):
        m = _NAME.match(path.stem)
        if not m:
            problems.append(
                Problem(str(path), "bad_name", "name is not S<subject>_<sequence>_<frame>")
            )
            continue
        subject, sequence, frame = m.groups()
        take = f"{subject}_{sequence}"
        samples.append(Sample(str(path), label, subject=subject, take=take, frame=int(frame)))
    if not samples:
        raise DatasetError(f"{root}: no CK+ images (expected <emotion>/S010_004_00000017.png)")
    return Scan(format="ckplus", root=str(root), samples=samples, problems=problems)
