"""What is wrong with a dataset: counts, subjects, sizes, unreadable files, duplicates,
duplicates with conflicting labels, near-blank images."""

from __future__ import annotations

import hashlib
import io
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from tinyfer.core.datasets import TRAIN_SPLITS, Problem, Sample, Scan
from tinyfer.core.io import PIL_FORMATS, read_file
from tinyfer.core.progress import parallel_map
from tinyfer.errors import TinyferError

#: An image whose gray levels have a standard deviation below this is "almost blank".
BLANK_STD = 3.0


@dataclass(frozen=True)
class _Facts:
    digest: str
    size: str
    mode: str
    std: float
    error: str | None


def _facts(sample: Sample) -> _Facts:
    if sample.pixels is not None:
        h, w = sample.pixels.shape
        data, size, mode = sample.pixels.tobytes(), f"{w}x{h}", "L"
    else:
        try:
            data = read_file(Path(sample.path))
        except TinyferError as exc:
            return _Facts("", "?", "?", -1.0, str(exc))
        try:
            with Image.open(io.BytesIO(data), formats=PIL_FORMATS) as img:
                size, mode = f"{img.size[0]}x{img.size[1]}", img.mode
        except Exception:  # any header Pillow cannot read: load() below names the problem
            size, mode = "?", "?"
    digest = hashlib.md5(data).hexdigest()
    try:
        std = float(sample.load(gray=True).std())
    except TinyferError as exc:
        return _Facts(digest, size, mode, -1.0, str(exc))
    return _Facts(digest, size, mode, std, None)


@dataclass
class Audit:
    """The findings of :func:`audit_dataset`; ``to_dict`` gives them as JSON-ready data."""

    format: str
    root: str
    samples: int
    counts: dict[str, dict[str, int]]  # split -> label -> n
    subjects: dict[str, int]  # label -> distinct subjects (empty when none)
    subjects_total: int  # distinct subjects in the whole dataset (0 when none)
    image_sizes: dict[str, int]
    image_modes: dict[str, int]
    unreadable: list[Problem]
    duplicate_groups: int
    duplicate_files: int
    duplicates_within_split: dict[str, int]  # split -> groups wholly inside it
    cross_split_copies: dict[str, int]  # split -> its images with an exact copy in training
    conflicting_groups: list[list[tuple[str, str]]]  # each: [(path, label), ...]
    near_blank: list[str]
    reader_problems: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["conflicting_group_count"] = len(self.conflicting_groups)
        return out


def audit_dataset(scan: Scan, *, workers: int | None = None, progress: bool = True) -> Audit:
    """Decode and hash every sample of ``scan`` and collect what is wrong with the dataset."""
    samples = scan.samples
    facts = parallel_map(
        _facts, samples, workers=workers, description="auditing", progress=progress
    )
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    subjects: dict[str, set[str]] = defaultdict(set)
    for s in samples:
        counts[s.split or "all"][s.label] += 1
        if s.subject:
            subjects[s.label].add(s.subject)
    unreadable = [Problem(s.path, "unreadable", f.error) for s, f in zip(samples, facts) if f.error]

    groups: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(facts):
        if not f.error:
            groups[f.digest].append(i)
    dupes = [g for g in groups.values() if len(g) > 1]
    within: Counter[str] = Counter()
    for g in dupes:
        splits = {samples[i].split or "all" for i in g}
        if len(splits) == 1:
            within[splits.pop()] += 1
    train_digests = {
        facts[i].digest for i, s in enumerate(samples) if (s.split or "") in TRAIN_SPLITS
    }
    cross: Counter[str] = Counter()
    if any(s.split for s in samples):
        for s, f in zip(samples, facts):
            if (s.split or "") not in TRAIN_SPLITS and not f.error and f.digest in train_digests:
                cross[s.split] += 1
    conflicting = [
        [(samples[i].path, samples[i].label) for i in g]
        for g in dupes
        if len({samples[i].label for i in g}) > 1
    ]
    return Audit(
        format=scan.format,
        root=scan.root,
        samples=len(samples),
        counts={k: dict(sorted(v.items())) for k, v in sorted(counts.items())},
        subjects={k: len(v) for k, v in sorted(subjects.items())},
        subjects_total=len(set().union(*subjects.values())),
        image_sizes=dict(Counter(f.size for f in facts).most_common()),
        image_modes=dict(Counter(f.mode for f in facts).most_common()),
        unreadable=unreadable,
        duplicate_groups=len(dupes),
        duplicate_files=sum(len(g) for g in dupes),
        duplicates_within_split=dict(within),
        cross_split_copies=dict(cross),
        conflicting_groups=conflicting,
        near_blank=[s.path for s, f in zip(samples, facts) if 0 <= f.std < BLANK_STD],
        reader_problems=list(scan.problems),
    )
