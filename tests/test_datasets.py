import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tinyfer.core.datasets import (
    detect_format,
    read_ckplus,
    read_dataset,
    read_fer2013,
    read_ferplus,
    read_folder,
    read_jaffe,
    read_mug,
    select_frames,
)
from tinyfer.errors import DatasetError, UnknownLabelError


def _img(path, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((8, 8), value, np.uint8))


def _mug_tree(root, subjects=("001", "002"), emotions=("anger", "happiness"), frames=7):
    for s in subjects:
        for e in emotions:
            for f in range(frames):
                _img(root / "subjects3" / s / e / "take000" / f"img_{f:04d}.jpg", f)
    return root


# --- MUG ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "mode", "k", "expected"),
    [
        (9, "apex", 3, [3, 4, 5]),
        (10, "apex", 2, [4, 5]),
        (5, "all", 3, [0, 1, 2, 3, 4]),
        (9, "spaced", 3, [0, 4, 8]),
        (2, "apex", 3, [0, 1]),
    ],
)
def test_frame_selection(n, mode, k, expected):
    assert select_frames(n, mode, k) == expected


def test_mug_reader_on_generated_tree(synth_mug):
    scan = read_mug(synth_mug, frames="apex", n_frames=3)
    assert scan.format == "mug"
    assert len(scan.samples) == 6 * 7 * 3
    assert {s.subject for s in scan.samples} == {f"{i:03d}" for i in range(1, 7)}
    # The synthetic tree has one subject under session0/ and one suffixed take.
    assert any("/session0/" in s.path for s in scan.samples)
    assert scan.problem_counts()["skipped_take"] == 1
    apex = [s for s in scan.samples if s.take.endswith("take000") and s.subject == "001"]
    assert sorted({s.frame for s in apex}) == [1, 2, 3]
    assert len(read_mug(synth_mug, frames="all").samples) == 6 * 7 * 5


def test_mug_missing_emotion_folder_is_reported(tmp_path):
    root = _mug_tree(tmp_path)
    shutil.rmtree(root / "subjects3" / "002" / "anger")
    scan = read_mug(root)
    missing = [p for p in scan.problems if p.kind == "missing_emotion"]
    assert len(missing) == 2  # each subject lacks the emotions the tree never had; 002 anger too
    assert "anger" in next(p.message for p in missing if p.path.endswith("002"))
    assert len(scan.samples) == 3 * 3


def test_mug_unknown_emotion_folder(tmp_path):
    root = _mug_tree(tmp_path)
    _img(root / "subjects3" / "001" / "bored" / "take000" / "img_0000.jpg")
    with pytest.raises(UnknownLabelError, match="bored"):
        read_mug(root)
    scan = read_mug(root, skip_unknown=True)
    assert scan.problem_counts()["unknown_label"] == 1


def test_mug_errors_on_empty_or_missing_root(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        read_mug(tmp_path / "absent")
    with pytest.raises(DatasetError, match="no subject folders"):
        read_mug(tmp_path)


# --- FER2013 -----------------------------------------------------------------------------


@pytest.mark.slow
def test_fer2013_real_counts(fer2013_dir):
    scan = read_fer2013(fer2013_dir)
    assert len(scan.samples) == 35887
    splits = {}
    for s in scan.samples:
        splits[s.split] = splits.get(s.split, 0) + 1
    assert splits == {"Training": 28709, "PublicTest": 3589, "PrivateTest": 3589}
    assert scan.counts()["disgust"] == 436 + 111


def test_fer2013_folder_edition_generated(tmp_path):
    _img(tmp_path / "train" / "happy" / "Training_1.jpg")
    _img(tmp_path / "test" / "sad" / "PublicTest_2.jpg")
    _img(tmp_path / "test" / "sad" / "PrivateTest_3.jpg")
    scan = read_dataset(tmp_path)
    assert scan.format == "fer2013"
    assert sorted((s.label, s.split) for s in scan.samples) == [
        ("happiness", "Training"), ("sadness", "PrivateTest"), ("sadness", "PublicTest"),
    ]  # fmt: skip


def _ferplus(root, rows, release=None):
    """A FER+ release in Microsoft's layout: ``rows`` are (folder, name, 10 votes)."""
    for folder, name, votes in rows:
        _img(root / folder / name)
        with open(root / folder / "label.csv", "a") as f:
            f.write(f'{name},"(0, 0, 48, 48)",{",".join(map(str, votes))}\n')
    if release is not None:
        lines = [
            "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,"
            "unknown,NF"
        ] + [f"{u},{n},{','.join(map(str, v))}" for u, n, v in release]
        (root / "fer2013new.csv").write_text("\n".join(lines) + "\n")
    return root


def test_ferplus_majority_ties_and_dropped_faces(tmp_path):
    #       neu hap sur sad ang dis fea con unk NF
    rows = [
        ("FER2013Train", "fer0.png", [6, 0, 1, 1, 0, 0, 0, 0, 2, 0]),  # neutral; stray votes
        ("FER2013Train", "fer1.png", [0, 4, 4, 0, 0, 0, 0, 2, 0, 0]),  # tie: column order
        ("FER2013Train", "fer2.png", [1, 0, 0, 0, 0, 0, 0, 0, 6, 3]),  # unknown: dropped
        ("FER2013Valid", "fer3.png", [0, 0, 0, 0, 0, 0, 0, 0, 2, 8]),  # not a face: dropped
        ("FER2013Test", "fer4.png", [0, 0, 0, 0, 3, 5, 0, 2, 0, 0]),
        ("FER2013Test", "fer5.png", [0, 0, 0, 0, 0, 0, 0, 7, 3, 0]),  # contempt
    ]
    root = _ferplus(tmp_path / "ferplus", rows)
    _img(root / "FER2013Test" / "fer9.png")  # an image without votes
    scan = read_dataset(root)
    assert scan.format == "ferplus"
    got = {Path(s.path).name: (s.label, s.split, s.votes) for s in scan.samples}
    assert got == {
        "fer0.png": ("neutral", "Training", {"neutral": 6}),
        "fer1.png": ("happiness", "Training", {"happiness": 4, "surprise": 4, "contempt": 2}),
        "fer4.png": ("disgust", "PrivateTest", {"anger": 3, "disgust": 5, "contempt": 2}),
        "fer5.png": ("contempt", "PrivateTest", {"contempt": 7}),
    }
    assert scan.problem_counts() == {"unknown": 1, "not_face": 1, "unlabelled": 1}
    assert scan.notes["tied_majority"] == 1


def test_ferplus_release_file_cross_check(tmp_path):
    votes, other = [9, 1, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]
    rows = [("FER2013Test", "fer0.png", votes), ("FER2013Test", "fer1.png", votes)]
    release = [("PrivateTest", "fer0.png", votes), ("PrivateTest", "fer0.png", other),
               ("PrivateTest", "fer1.png", [8, 2, 0, 0, 0, 0, 0, 0, 0, 0])]  # fmt: skip
    scan = read_ferplus(_ferplus(tmp_path, rows, release))
    assert [Path(s.path).name for s in scan.samples] == ["fer1.png"]
    assert scan.problem_counts() == {"ambiguous_votes": 1}
    assert scan.notes == {"release_duplicate_rows": 1, "votes_differ_from_fer2013new": 1}


def test_ferplus_soft_labels_follow_the_chosen_labels(tmp_path):
    from tinyfer.core.config import DataConfig
    from tinyfer.core.prepare import prepare

    votes = [[6, 0, 0, 0, 0, 0, 0, 4, 0, 0], [0, 8, 0, 0, 0, 0, 0, 2, 0, 0],
             [0, 0, 0, 0, 0, 0, 0, 9, 1, 0]]  # fmt: skip
    rows = [("FER2013Train", f"fer{i}.png", v) for i, v in enumerate(votes)]
    root = _ferplus(tmp_path / "ferplus", rows)
    cfg = DataConfig(path=str(root), detector="none", labels=["neutral", "happiness"])
    p = prepare(cfg, tmp_path / "prep", progress=False, workers=1)
    assert p.labels == ("happiness", "neutral") and len(p) == 2  # the contempt face left out
    by_name = {Path(f).name: row for f, row in zip(p.paths, p.soft)}
    assert np.allclose(by_name["fer0.png"], [0, 1]) and np.allclose(by_name["fer1.png"], [1, 0])
    assert p.manifest["reader_notes"] == {} and p.manifest["problem_counts"] == {
        "label_not_selected": 1
    }


def test_ferplus_real_counts(ferplus_dir):
    """The release as DATA.md describes it: 1,778 tied majorities, 1,602 faces whose votes
    differ between the two label files (one of them the placeholder, dropped)."""
    scan = read_ferplus(ferplus_dir)
    assert scan.notes["tied_majority"] == 1778
    differ = scan.notes["votes_differ_from_fer2013new"]
    assert differ + scan.problem_counts()["ambiguous_votes"] == 1602
    splits = {}
    for s in scan.samples:
        splits[s.split] = splits.get(s.split, 0) + 1
    assert splits == {"Training": 28385, "PublicTest": 3555, "PrivateTest": 3544}


def test_fer2013_csv(tmp_path):
    path = tmp_path / "fer2013.csv"
    pixels = " ".join(["7"] * 48 * 48)
    path.write_text(
        "emotion,pixels,Usage\n"
        f"3,{pixels},Training\n"
        f"6,{pixels},PrivateTest\n"
        "9,1 2 3,Training\n"  # bad id
        "0,1 2 3,Training\n"  # not square
    )
    scan = read_dataset(path)
    assert [(s.label, s.split) for s in scan.samples] == [
        ("happiness", "Training"), ("neutral", "PrivateTest"),
    ]  # fmt: skip
    assert scan.samples[0].load().shape == (48, 48)
    assert [p.kind for p in scan.problems] == ["unreadable", "unreadable"]
    assert scan.problems[0].path.endswith("fer2013.csv:4")


# --- CK+, JAFFE, folders -----------------------------------------------------------------


def test_ckplus_real(ckplus_dir):
    scan = read_ckplus(ckplus_dir)
    assert len(scan.samples) == 981
    assert len({s.subject for s in scan.samples}) == 118
    assert scan.counts()["contempt"] == 54 and "neutral" not in scan.counts()
    assert detect_format(ckplus_dir) == "ckplus"


def test_ckplus_generated_with_bad_name(tmp_path):
    _img(tmp_path / "anger" / "S010_004_00000017.png")
    _img(tmp_path / "anger" / "S010_004_00000018.png")
    _img(tmp_path / "happy" / "S011_001_00000005.png")
    _img(tmp_path / "happy" / "oops.png")
    scan = read_ckplus(tmp_path)
    assert [(s.subject, s.take, s.frame) for s in scan.samples][:1] == [("S010", "S010_004", 17)]
    assert scan.problem_counts()["bad_name"] == 1


def test_jaffe_generated(tmp_path):
    for name in ("KA.AN1.39.tiff", "KA.HA2.30.tiff", "YM.SU1.58.tiff", "notes.tiff"):
        _img(tmp_path / name)
    assert detect_format(tmp_path) == "jaffe"
    scan = read_jaffe(tmp_path)
    assert sorted((s.subject, s.label) for s in scan.samples) == [
        ("KA", "anger"), ("KA", "happiness"), ("YM", "surprise"),
    ]  # fmt: skip
    assert scan.problem_counts()["bad_name"] == 1


def test_folder_with_subject_regex(tmp_path):
    _img(tmp_path / "Happy" / "p01_a.jpg")
    _img(tmp_path / "Angry" / "p02_b.png")
    _img(tmp_path / "Angry" / "x.png")
    (tmp_path / "Angry" / "readme.txt").write_text("hi")
    assert detect_format(tmp_path) == "folder"
    scan = read_folder(tmp_path, subject_regex=r"^(p\d+)_")
    assert sorted((s.label, s.subject) for s in scan.samples) == [
        ("anger", "p02"), ("happiness", "p01"),
    ]  # fmt: skip
    assert scan.problem_counts() == {"bad_name": 1, "not_image": 1}


def test_folder_unknown_labels_error_lists_them(tmp_path):
    _img(tmp_path / "happy" / "a.jpg")
    _img(tmp_path / "bored" / "b.jpg")
    _img(tmp_path / "sleepy" / "c.jpg")
    with pytest.raises(UnknownLabelError, match="bored, sleepy"):
        read_folder(tmp_path)
    assert len(read_folder(tmp_path, skip_unknown=True).samples) == 1


# --- auto ----------------------------------------------------------------------------------


def test_auto_detection_says_what_it_chose(synth_mug, caplog):
    import logging

    caplog.set_level(logging.INFO)
    assert read_dataset(synth_mug.parent).format == "mug"
    assert "recognised as mug" in caplog.text
    assert detect_format(synth_mug) == "mug"


def test_auto_detection_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        detect_format(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="layout not recognised"):
        read_dataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="unknown layout 'xyz'"):
        read_dataset(tmp_path, "xyz")
