import numpy as np
import pytest

from tinyfer.core.prepare import prepare
from tinyfer.core.splits import (
    check_folds_possible,
    dataset_split,
    leave_one_subject_out,
    random_split,
    subject_kfold,
    validation_split,
)
from tinyfer.errors import SplitError


def _toy(n_subjects=12, per=6, classes=3):
    subjects = np.repeat([f"s{i}" for i in range(n_subjects)], per)
    y = np.tile(np.arange(per) % classes, n_subjects)
    return y, subjects


def test_kfold_is_subject_disjoint_and_tests_every_sample_once():
    y, subjects = _toy()
    folds = subject_kfold(y, subjects, k=4, seed=0)
    assert len(folds) == 4
    tested = np.concatenate([te for _, te in folds])
    assert sorted(tested.tolist()) == list(range(len(y)))
    for tr, te in folds:
        assert not set(subjects[tr]) & set(subjects[te])
        assert set(y[te]) == {0, 1, 2}


def test_kfold_on_ckplus_is_subject_disjoint(ckplus_dir, tmp_path):
    from tinyfer.core.config import DataConfig

    p = prepare(DataConfig(path=str(ckplus_dir)), tmp_path, progress=False)
    folds = subject_kfold(p.y, p.subjects, k=10, labels=p.labels)
    for tr, te in folds:
        assert not set(p.subjects[tr]) & set(p.subjects[te])
    assert sum(len(te) for _, te in folds) == 981


def test_too_few_subjects_for_k_is_refused_with_numbers():
    y, subjects = _toy(n_subjects=4)
    with pytest.raises(SplitError, match="10 folds need at least 10 subjects; the data has 4"):
        subject_kfold(y, subjects, k=10)
    y = y.copy()
    y[subjects == "s0"] = 3  # class 3 only in one subject
    with pytest.raises(SplitError, match="rare: 1.*k <= 1"):
        check_folds_possible(y, subjects, 3, labels=["a", "b", "c", "rare"])


def test_missing_subjects_are_refused():
    with pytest.raises(SplitError, match="subject id"):
        subject_kfold(np.zeros(4, int), np.array(["", "", "a", "b"]), k=2)


def test_leave_one_subject_out():
    _, subjects = _toy(n_subjects=5)
    folds = leave_one_subject_out(subjects)
    assert len(folds) == 5
    assert all(len(set(subjects[te])) == 1 for _, te in folds)


def test_validation_carve_out_is_subject_disjoint():
    y, subjects = _toy(n_subjects=20)
    idx = np.arange(len(y))[: 16 * 6]
    tr, va = validation_split(idx, y, subjects, 0.25, seed=1)
    assert len(tr) + len(va) == len(idx)
    assert not set(subjects[tr]) & set(subjects[va])
    assert set(tr) | set(va) == set(idx)


def test_validation_without_subjects_is_by_image():
    y = np.tile([0, 1], 50)
    tr, va = validation_split(np.arange(100), y, np.array([""] * 100), 0.2)
    assert len(va) == 20 and not set(tr) & set(va)


def test_dataset_split_and_random_split():
    splits = np.array(["Training"] * 5 + ["PublicTest"] * 2 + ["PrivateTest"] * 3)
    parts = dataset_split(splits)
    assert {k: len(v) for k, v in parts.items()} == {
        "PrivateTest": 3, "PublicTest": 2, "Training": 5,
    }  # fmt: skip
    with pytest.raises(SplitError, match="no split of its own"):
        dataset_split(np.array(["", ""]))
    tr, te = random_split(np.tile([0, 1], 10), 0.3)
    assert len(te) == 6 and not set(tr) & set(te)


def test_dataset_protocol_holds_out_a_dataset_without_a_split_by_subject():
    from tinyfer.core.config import SplitConfig
    from tinyfer.core.splits import make_split

    y_ck, subjects_ck = _toy(n_subjects=20, per=6, classes=3)
    n_fer = 60
    y = np.concatenate([np.arange(n_fer) % 3, y_ck])
    subjects = np.concatenate([[""] * n_fer, subjects_ck])
    splits = np.array(["Training"] * 40 + ["PublicTest"] * 10 + ["PrivateTest"] * 10
                      + [""] * len(y_ck))  # fmt: skip
    sources = np.array(["fer"] * n_fer + ["ck"] * len(y_ck))
    cfg = SplitConfig(protocol="dataset", test_fraction=0.2, val_fraction=0.2)
    parts = make_split(y, subjects, splits, cfg, sources=sources)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(len(y)))
    for role, own in (("train", "Training"), ("val", "PublicTest"), ("test", "PrivateTest")):
        fer = parts[role][sources[parts[role]] == "fer"]
        assert np.array_equal(fer, np.flatnonzero(splits == own))  # its own split, untouched
        assert (sources[parts[role]] == "ck").any(), role
    ck = {role: set(subjects[idx][sources[idx] == "ck"]) for role, idx in parts.items()}
    assert not (ck["train"] & ck["val"]) and not (ck["train"] | ck["val"]) & ck["test"]
    # A single dataset without a split of its own is still refused under this protocol.
    with pytest.raises(SplitError, match="no split of its own"):
        make_split(y_ck, subjects_ck, np.array([""] * len(y_ck)), cfg, sources=None)


def test_fewer_training_subjects_are_nested_subsets():
    from tinyfer.core.splits import first_subjects

    subjects = np.repeat([f"S{i:02d}" for i in range(10)], 3)
    idx = np.arange(3, 30)  # subject S00 not among the rows
    sizes = {n: first_subjects(idx, subjects, n, seed=4) for n in (2, 5, 0, 12)}
    assert [len(set(subjects[sizes[n]])) for n in (2, 5)] == [2, 5]
    assert set(sizes[2]) < set(sizes[5]) < set(idx)
    np.testing.assert_array_equal(sizes[0], idx)
    np.testing.assert_array_equal(sizes[12], idx)
    np.testing.assert_array_equal(first_subjects(idx, subjects, 5, seed=4), sizes[5])
    assert "S00" not in set(subjects[sizes[5]])


def test_training_keeps_the_last_frames_of_each_take():
    from types import SimpleNamespace

    from tinyfer.core.config import SplitConfig
    from tinyfer.core.splits import last_frames, training_rows

    takes = np.array(["a", "a", "a", "b", "b", "", "c", "c", "c"])
    frames = np.array([7, 9, 8, 2, 1, -1, 5, 6, 4])
    idx = np.array([0, 1, 2, 3, 4, 5, 6, 7])  # take c's frame 4 not among the rows
    np.testing.assert_array_equal(last_frames(idx, takes, frames, 1), [1, 3, 5, 7])
    np.testing.assert_array_equal(last_frames(idx, takes, frames, 2), [1, 2, 3, 4, 5, 6, 7])
    np.testing.assert_array_equal(last_frames(idx, takes, frames, 0), idx)
    data = SimpleNamespace(subjects=np.array(list("xxxyyyzzz")), takes=takes, frames=frames)
    cfg = SplitConfig(train_subjects=1, train_frames_per_take=1)
    rows = training_rows(idx, data, cfg, seed=0)
    assert len(set(data.subjects[rows])) == 1 and set(rows) <= {1, 3, 5, 7}
