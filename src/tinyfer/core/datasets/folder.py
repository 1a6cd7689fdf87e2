"""Plain class folders: ``ROOT/<label>/*.jpg``, subject optionally taken from file names."""

from __future__ import annotations

import re
from pathlib import Path

from tinyfer.core.datasets.base import Problem, Sample, Scan, labelled_images, require_dir
from tinyfer.errors import DatasetError


def read_folder(
    root: str | Path, *, subject_regex: str | None = None, skip_unknown: bool = False
) -> Scan:
    """Read ``ROOT/<label>/*`` images.

    ``subject_regex`` is searched in each file name; its first group (or whole match) is the
    subject id, e.g. ``r"^(S\\d+)_"``. Files it does not match are problems.
    """
    root = require_dir(root, what="class folders ROOT/<label>/*.jpg")
    pattern = re.compile(subject_regex) if subject_regex else None
    samples: list[Sample] = []
    problems: list[Problem] = []
    for path, label in labelled_images(root, problems, skip_unknown=skip_unknown):
        subject = None
        if pattern is not None:
            m = pattern.search(path.name)
            if not m:
                problems.append(
                    Problem(str(path), "bad_name", f"no subject id matches {subject_regex!r}")
                )
                continue
            subject = m.group(1) if m.groups() else m.group(0)
        samples.append(Sample(str(path), label, subject=subject))
    if not samples:
        raise DatasetError(f"{root}: no images in any label folder")
    return Scan(format="folder", root=str(root), samples=samples, problems=problems)
