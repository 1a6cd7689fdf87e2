"""Splits that keep a subject's images together: k-fold, leave-one-subject-out, validation
carve-outs, the dataset's own split, and (explicitly leaky) random image splits.

scikit-learn (the ``eval`` extra) is imported where a split is made, so that the light
install can import this module (the data core) without it."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from tinyfer.errors import SplitError

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


def first_subjects(idx: np.ndarray, subjects: np.ndarray, n: int, *, seed: int = 0) -> np.ndarray:
    """The rows of ``idx`` that belong to ``n`` of its subjects (0 or more than it has: all),
    in one seeded order of the subjects, so that a smaller ``n`` takes a subset of a larger
    one's subjects (a learning curve over dataset size)."""
    idx = np.asarray(idx)
    groups = np.asarray(subjects)[idx]
    names = np.unique(groups)
    if n <= 0 or n >= len(names):
        return idx
    if (groups == "").any():
        raise SplitError("a number of training subjects needs subject ids on every face")
    chosen = np.random.default_rng(seed).permutation(names)[:n]
    return idx[np.isin(groups, chosen)]


def last_frames(idx: np.ndarray, takes: np.ndarray, frames: np.ndarray, n: int) -> np.ndarray:
    """The rows of ``idx`` among the ``n`` highest-numbered frames of their take (0: all;
    rows without a take are kept): CK+ sequences end at the apex, and a take's frames chosen
    for their expression are near-duplicates of each other."""
    idx = np.asarray(idx)
    if n <= 0 or len(idx) == 0:
        return idx
    take, frame = np.asarray(takes)[idx], np.asarray(frames)[idx]
    order = np.lexsort((-frame, take))  # by take, then latest frame first
    by_take = take[order]
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.searchsorted(by_take, by_take)
    return idx[(rank < n) | (take == "")]


def training_rows(idx: np.ndarray, data, cfg, *, seed: int = 0) -> np.ndarray:
    """The training rows ``idx`` as a :class:`~tinyfer.core.config.SplitConfig` ``cfg`` thins
    them: ``train_subjects`` of its subjects, then ``train_frames_per_take`` of each take."""
    idx = first_subjects(idx, data.subjects, cfg.train_subjects, seed=seed)
    return last_frames(idx, data.takes, data.frames, cfg.train_frames_per_take)


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


def random_kfold(y: np.ndarray, k: int = 10, *, seed: int = 0) -> list[Fold]:
    """LEAKY: k class-stratified folds by image, ignoring subjects (to measure the leak)."""
    from sklearn.model_selection import StratifiedKFold

    log.warning("random image folds: frames of one subject leak into test; accuracy is inflated")
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(cv.split(np.zeros(len(y)), y))


def make_split(
    y: np.ndarray,
    subjects: np.ndarray,
    splits: np.ndarray,
    cfg,
    *,
    seed: int = 0,
    labels: Sequence[str] = (),
    sources: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Train / val / test indices for one run, by ``cfg`` (a
    :class:`~tinyfer.core.config.SplitConfig`).

    ``holdout`` holds out a subject-disjoint test set and carves a subject-disjoint validation
    set from the rest; ``dataset`` uses the dataset's own usage column; ``random`` is by image.
    In combined data (``sources`` names each row's dataset), ``dataset`` splits each dataset
    without a split of its own as ``holdout`` would, into the same three split names.
    """
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        raise SplitError(
            f"the data has a single class ({_names(np.unique(y), labels)}); "
            "a classifier needs at least two"
        )
    if cfg.protocol == "dataset":
        if sources is not None:
            splits = _split_the_unsplit(y, subjects, splits, sources, cfg, seed)
        parts = dataset_split(splits)
        wanted = {"train": cfg.train_split, "val": cfg.val_split, "test": cfg.test_split}
        missing = [name for name in wanted.values() if name not in parts]
        if missing:
            raise SplitError(f"split(s) {missing} not in the data; it has {sorted(parts)}")
        out = {role: parts[name] for role, name in wanted.items()}
    elif cfg.protocol == "random":
        rest, test = random_split(y, cfg.test_fraction, seed=seed)
        tr, va = random_split(y[rest], cfg.val_fraction, seed=seed)
        out = {"train": rest[tr], "val": rest[va], "test": test}
    else:
        everything = np.arange(len(y))
        rest, test = validation_split(everything, y, subjects, cfg.test_fraction, seed=seed)
        train, val = validation_split(rest, y, subjects, cfg.val_fraction, seed=seed + 1)
        out = {"train": train, "val": val, "test": test}
    _check_classes(y, out, labels)
    return out


def _split_the_unsplit(y, subjects, splits, sources, cfg, seed: int) -> np.ndarray:
    """``splits`` with the rows of each dataset that has no split of its own (while another
    has one) held out by subject into ``cfg``'s train / val / test names."""
    splits = np.asarray(splits).astype(object)
    unsplit = splits == ""
    if unsplit.all() or not unsplit.any():
        return splits
    sources = np.asarray(sources)
    for source in np.unique(sources[unsplit]):
        idx = np.flatnonzero(unsplit & (sources == source))
        rest, test = validation_split(idx, y, subjects, cfg.test_fraction, seed=seed)
        train, val = validation_split(rest, y, subjects, cfg.val_fraction, seed=seed + 1)
        for part, name in ((train, cfg.train_split), (val, cfg.val_split), (test, cfg.test_split)):
            splits[part] = name
        log.info("%s has no split of its own: held out by subject into %s / %s / %s (%d / %d / "
                 "%d faces)", source, cfg.train_split, cfg.val_split, cfg.test_split,
                 len(train), len(val), len(test))  # fmt: skip
    return splits


def _names(classes, labels: Sequence[str]) -> str:
    return ", ".join(labels[c] if len(labels) > c else str(c) for c in classes)


def _check_classes(y: np.ndarray, parts: dict[str, np.ndarray], labels: Sequence[str]) -> None:
    classes = set(np.unique(y).tolist())
    for role, idx in parts.items():
        absent = sorted(classes - set(np.unique(y[idx]).tolist()))
        if not absent:
            continue
        if role == "train":
            raise SplitError(f"the training split has no sample of: {_names(absent, labels)}")
        log.warning("the %s split has no sample of: %s", role, _names(absent, labels))


def split_of_run(data, cfg) -> dict[str, np.ndarray]:
    """A run's train / val / test indices into its prepared ``data``, as its config ``cfg``
    (a :class:`~tinyfer.core.config.TrainConfig`) made them: the same call in training, in
    evaluation of the run on its own data, and in benchmarks of its held-out faces."""
    parts = make_split(data.y, data.subjects, data.splits, cfg.split, seed=cfg.seed,
                       labels=data.labels, sources=data.sources)  # fmt: skip
    parts["train"] = training_rows(parts["train"], data, cfg.split, seed=cfg.seed)
    return parts
