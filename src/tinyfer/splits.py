"""Splits that keep a subject's images together: k-fold, leave-one-subject-out, validation
carve-outs, the dataset's own split, and (explicitly leaky) random image splits."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from .errors import SplitError

log = logging.getLogger(__name__)

Fold = tuple[np.ndarray, np.ndarray]  # (train indices, test indices)


def _groups(subjects: np.ndarray, what: str) -> np.ndarray:
    subjects = np.asarray(subjects)
    if (subjects == "").any():
        raise SplitError(
            f"{what} needs a subject id for every sample, and {int((subjects == '').sum())} have "
            "none. Datasets without subjects (FER2013) use their own split; for class folders "
            "give a subject regex, or ask for the leaky random split explicitly."
        )
    return subjects


def check_folds_possible(
    y: np.ndarray, subjects: np.ndarray, k: int, labels: Sequence[str] = ()
) -> None:
    """Refuse k subject-grouped folds when some class has fewer than k subjects."""
    y, subjects = np.asarray(y), _groups(subjects, "a subject-grouped k-fold")
    n_subjects = len(np.unique(subjects))
    if k < 2:
        raise SplitError(f"k must be at least 2, got {k}")
    if n_subjects < k:
        raise SplitError(f"{k} folds need at least {k} subjects; the data has {n_subjects}")
    short = {}
    for c in np.unique(y):
        n = len(np.unique(subjects[y == c]))
        if n < k:
            short[labels[c] if len(labels) > c else int(c)] = n
    if short:
        detail = ", ".join(f"{name}: {n}" for name, n in short.items())
        raise SplitError(
            f"{k} folds cannot each hold every class: subjects per class too few ({detail}). "
            f"Use k <= {min(short.values())}, or leave those classes out."
        )


def subject_kfold(
    y: np.ndarray, subjects: np.ndarray, k: int = 10, *, seed: int = 0, labels: Sequence[str] = ()
) -> list[Fold]:
    """k class-stratified folds, no subject in two (scikit-learn's StratifiedGroupKFold)."""
    from sklearn.model_selection import StratifiedGroupKFold

    check_folds_possible(y, subjects, k, labels)
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in cv.split(np.zeros(len(y)), y, groups=subjects)]


def leave_one_subject_out(subjects: np.ndarray) -> list[Fold]:
    """One fold per subject: train on all others, test on that subject."""
    from sklearn.model_selection import LeaveOneGroupOut

    subjects = _groups(subjects, "leave-one-subject-out")
    return list(LeaveOneGroupOut().split(np.zeros(len(subjects)), groups=subjects))


def validation_split(
    idx: np.ndarray, y: np.ndarray, subjects: np.ndarray, fraction: float = 0.15, *, seed: int = 0
) -> Fold:
    """Carve a subject-disjoint, class-stratified validation set out of the rows ``idx``.

    Returns (train, validation) as indices into the full arrays. Without subject ids (all
    ``""``) the carve-out is by image, stratified by class.
    """
    idx = np.asarray(idx)
    if not 0 < fraction < 1:
        raise SplitError(f"validation fraction must lie in (0, 1), got {fraction}")
    ys, groups = np.asarray(y)[idx], np.asarray(subjects)[idx]
    if (groups == "").all():
        from sklearn.model_selection import train_test_split

        tr, va = train_test_split(
            np.arange(len(idx)), test_size=fraction, stratify=ys, random_state=seed
        )
        return idx[np.sort(tr)], idx[np.sort(va)]
    from sklearn.model_selection import StratifiedGroupKFold

    groups = _groups(groups, "a subject-disjoint validation split")
    n_splits = max(2, min(round(1 / fraction), len(np.unique(groups))))
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    tr, va = next(cv.split(np.zeros(len(idx)), ys, groups=groups))
    return idx[tr], idx[va]


def dataset_split(splits: np.ndarray) -> dict[str, np.ndarray]:
    """The dataset's own split: usage -> indices (FER2013: Training, PublicTest, PrivateTest)."""
    splits = np.asarray(splits)
    if (splits == "").all():
        raise SplitError("this dataset has no split of its own; use subject-grouped folds")
    return {str(name): np.flatnonzero(splits == name) for name in np.unique(splits)}


def random_split(y: np.ndarray, test_fraction: float = 0.2, *, seed: int = 0) -> Fold:
    """LEAKY: a class-stratified split by image, ignoring subjects.

    On sequence data (MUG, CK+) near-identical frames of one subject land on both sides, so
    accuracy is inflated. It exists to measure that inflation, never to report results.
    """
    from sklearn.model_selection import train_test_split

    log.warning("random image split: frames of one subject leak into test; accuracy is inflated")
    tr, te = train_test_split(
        np.arange(len(y)), test_size=test_fraction, stratify=y, random_state=seed
    )
    return np.sort(tr), np.sort(te)
