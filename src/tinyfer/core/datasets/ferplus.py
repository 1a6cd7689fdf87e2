"""FER+ (Barsoum et al., 2016): the FER2013 faces re-labelled by 10 annotators each, in the
layout Microsoft's FERPlus tools write: ``FER2013{Train,Valid,Test}/fer<n>.png`` with a
``label.csv`` per folder (name, face box, then votes for neutral, happiness, surprise, sadness,
anger, disgust, fear, contempt, unknown, not-a-face).

Each face carries its votes (``Sample.votes``, the soft label) and the majority as its label:
the column with most votes, ties broken in that column order (neutral first). Faces whose
majority is unknown or not-a-face are dropped and counted. A class with a single vote of ten is
taken for an annotator's slip and left out of the votes, as the FER+ authors did. Contempt is a
label like any other; ``data.labels`` leaves it out (its votes then drop from the soft labels).
The folders are FER2013's own split: Train, Valid and Test are FER2013's Training, PublicTest and
PrivateTest, and are named so here so that a FER2013 config's split applies as it is.

Where the release's ``fer2013new.csv`` lies beside the folders it is read as a cross-check:
names it lists twice with different votes are dropped (one is a placeholder image carrying
another face's votes), and faces whose folder votes differ from it are counted (the folder
wins: two label releases).
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from tinyfer.core.datasets.base import Problem, Sample, Scan, image_files, require_dir
from tinyfer.errors import DatasetError

COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
NOT_EMOTIONS = ("unknown", "not_face")
SPLITS = {"FER2013Train": "Training", "FER2013Valid": "PublicTest", "FER2013Test": "PrivateTest"}


def is_ferplus(root: Path) -> bool:
    """True for the release folder (split folders with ``label.csv``) or one split folder."""
    folders = [root / name for name in SPLITS] + [root]
    return any((f / "label.csv").is_file() for f in folders)


def _votes(cells: list[str], where: str) -> list[int]:
    try:
        votes = [int(float(c)) for c in cells]
    except ValueError as exc:
        raise ValueError(f"{where}: vote counts are not numbers ({exc})") from None
    if len(votes) != len(COLUMNS) + len(NOT_EMOTIONS) or min(votes) < 0 or sum(votes) == 0:
        raise ValueError(f"{where}: expected 10 non-negative vote counts, got {cells}")
    return votes


def _release_votes(root: Path, problems: list[Problem], notes: Counter) -> dict:
    """``(usage, name) -> votes`` from ``fer2013new.csv``; conflicting duplicates -> None."""
    file = root / "fer2013new.csv"
    table: dict[tuple[str, str], list[int] | None] = {}
    if not file.is_file():
        return table
    with file.open(newline="") as f:
        rows = csv.reader(f)
        next(rows, None)
        for line, row in enumerate(rows, start=2):
            if len(row) < 12 or not row[1]:
                continue  # FER2013 faces FER+ left unnamed
            key = (row[0], row[1])
            try:
                votes = _votes(row[2:12], f"{file}:{line}")
            except ValueError as exc:
                problems.append(Problem(f"{file}:{line}", "bad_row", str(exc)))
                continue
            if key in table:
                notes["release_duplicate_rows"] += 1
                if table[key] is not None and table[key] != votes:
                    table[key] = None
                continue
            table[key] = votes
    return table


def read_ferplus(root: str | Path) -> Scan:
    """Read FER+ from the release folder (or one ``FER2013*`` folder with its ``label.csv``)."""
    root = require_dir(root, what="FER+'s FER2013Train/Valid/Test folders with label.csv")
    folders = [root / name for name in SPLITS if (root / name / "label.csv").is_file()]
    if not folders and (root / "label.csv").is_file():
        folders = [root]
    if not folders:
        raise DatasetError(f"{root}: no FER2013Train/Valid/Test folder with a label.csv")
    release_root = root if folders[0] != root else root.parent
    problems: list[Problem] = []
    notes: Counter[str] = Counter()
    release = _release_votes(release_root, problems, notes)
    samples: list[Sample] = []
    for folder in folders:
        usage = SPLITS.get(folder.name, folder.name)
        images = {p.name: p for p in image_files(folder)}
        labelled: set[str] = set()
        with (folder / "label.csv").open(newline="") as f:
            for line, row in enumerate(csv.reader(f), start=1):
                where = f"{folder / 'label.csv'}:{line}"
                if not row:
                    continue
                try:
                    votes = _votes(row[2:12], where)
                except ValueError as exc:
                    problems.append(Problem(where, "bad_row", str(exc)))
                    continue
                name = row[0]
                labelled.add(name)
                if name not in images:
                    problems.append(Problem(where, "missing_file", f"{name} is not in {folder}"))
                    continue
                path = str(images[name])
                released = release.get((usage, name), votes)
                if released is None:
                    why = "fer2013new.csv lists this name twice with different votes; left out"
                    problems.append(Problem(path, "ambiguous_votes", why))
                    continue
                if released != votes:
                    notes["votes_differ_from_fer2013new"] += 1
                sample = _sample(path, votes, usage, problems, notes)
                if sample is not None:
                    samples.append(sample)
        for name in sorted(set(images) - labelled):
            problems.append(Problem(str(images[name]), "unlabelled", "no row in label.csv"))
    if not samples:
        raise DatasetError(f"{root}: no FER+ face with an emotion majority")
    return Scan(format="ferplus", root=str(root), samples=samples, problems=problems,
                notes=dict(notes))  # fmt: skip


def _sample(path: str, votes: list[int], usage: str, problems: list[Problem], notes: Counter):
    top = max(range(len(votes)), key=lambda i: (votes[i], -i))
    if top >= len(COLUMNS):
        kind = NOT_EMOTIONS[top - len(COLUMNS)]
        problems.append(Problem(path, kind, f"FER+ majority is {kind}: {votes}; left out"))
        return None
    if votes.count(votes[top]) > 1:
        notes["tied_majority"] += 1
    kept = {c: v for c, v in zip(COLUMNS, votes) if v > 1}
    if not kept:  # every emotion a single vote: nothing to call a slip
        kept = {c: v for c, v in zip(COLUMNS, votes) if v}
        notes["single_votes_only"] += 1
    return Sample(path, COLUMNS[top], split=usage, votes=kept)
