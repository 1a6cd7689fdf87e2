import dataclasses
import json
import os

import cv2
import numpy as np
import pytest

from tinyfer.core.config import DataConfig
from tinyfer.core.prepare import load_prepared, prepare, with_replay
from tinyfer.errors import DatasetError


def test_synthetic_mug_prepares_with_subjects_and_problems(synth_prepared):
    p = synth_prepared
    assert p.X.shape == (6 * 7 * 3, 48, 48) and p.X.dtype == np.uint8
    assert p.labels == ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
    assert set(p.subjects) == {f"{i:03d}" for i in range(1, 7)}
    assert p.manifest["detector"] == "mtcnn" and p.manifest["geometry"] == "template"
    assert sum(p.manifest["cut_by"].values()) == len(p)
    assert p.manifest["cut_by"]["landmarks"] >= 0.8 * len(p)  # the rest: Haar's box framing
    assert p.manifest["problem_counts"] == {"skipped_take": 1}
    assert all(t for t in p.takes) and (p.frames >= 0).all()


def test_cache_is_reused_and_rebuilt_on_change(tmp_path, ckplus_dir):
    src = tmp_path / "ck"
    for label in ("anger", "happy"):
        (src / label).mkdir(parents=True)
        for f in sorted((ckplus_dir / label).iterdir())[:6]:
            (src / label / f.name).write_bytes(f.read_bytes())
    out = tmp_path / "out"
    cfg = DataConfig(path=str(src))
    first = prepare(cfg, out, progress=False)
    assert first.X.shape == (12, 48, 48) and first.manifest["detector"] == "mtcnn"
    assert first.manifest["cut_by"] == {"landmarks": 12}  # CK+48 crops: MTCNN finds every face
    mtime = os.stat(first.file).st_mtime_ns
    again = prepare(cfg, out, progress=False)
    assert again.file == first.file and os.stat(again.file).st_mtime_ns == mtime
    np.testing.assert_array_equal(again.X, first.X)
    for f in (src / "anger").iterdir():  # copied again: new times, the same bytes
        os.utime(f, ns=(os.stat(f).st_atime_ns, os.stat(f).st_mtime_ns + 10**9))
    assert prepare(cfg, out, progress=False).file == first.file
    # Changing the config or any input makes a new cache.
    bigger = prepare(DataConfig(path=str(src), img_size=64), out, progress=False)
    assert bigger.file != first.file and bigger.X.shape[1:] == (64, 64)
    victim = next((src / "happy").iterdir())
    cv2.imwrite(str(victim), np.zeros((48, 48), np.uint8))
    changed = prepare(cfg, out, progress=False)
    assert changed.file != first.file
    assert not list(out.glob(".*.tmp")), "no temporary files are left behind"


def test_bad_files_are_counted_listed_and_skipped(tmp_path):
    root = tmp_path / "data"
    face = np.random.default_rng(1).integers(0, 255, (48, 48), np.uint8)
    for label in ("happy", "sad"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(root / label / f"ok{i}.png"), face)
    (root / "happy" / "zero.png").write_bytes(b"")
    (root / "sad" / "junk.jpg").write_bytes(b"not an image")
    (root / "sad" / "notes.txt").write_text("hello")
    p = prepare(DataConfig(path=str(root), detector="none"), tmp_path / "out", progress=False)
    assert len(p) == 6
    m = p.manifest
    assert m["problem_counts"] == {"not_image": 1, "unreadable": 2}
    paths = {q["path"].rsplit("/", 1)[-1]: q["message"] for q in m["problems"]}
    assert "empty file" in paths["zero.png"] and "not an image" in paths["junk.jpg"]
    assert json.loads((tmp_path / "out" / (os.path.basename(p.file)[:-4] + ".json")).read_text())


def test_frames_without_faces_are_listed(tmp_path):
    root = tmp_path / "data"
    (root / "happy").mkdir(parents=True)
    noise = np.random.default_rng(0).integers(0, 255, (200, 200), np.uint8)
    cv2.imwrite(str(root / "happy" / "noise.png"), noise)
    with pytest.raises(DatasetError, match="no usable face.*no_face"):
        prepare(DataConfig(path=str(root), detector="haar"), tmp_path / "out", progress=False)


def test_mug_frame_gives_one_face(tmp_path, mug_frame):
    root = tmp_path / "one" / "neutral"
    root.mkdir(parents=True)
    (root / "img_0000.jpg").write_bytes(mug_frame.read_bytes())
    p = prepare(DataConfig(path=str(tmp_path / "one"), img_size=96, align=True), tmp_path / "o",
                progress=False)  # fmt: skip
    assert p.X.shape == (1, 96, 96) and p.manifest["multiple_faces"] == 0


def test_label_selection_and_load_round_trip(synth_prepared, synth_mug, tmp_path):
    loaded = load_prepared(synth_prepared.file)
    assert loaded.labels == synth_prepared.labels
    np.testing.assert_array_equal(loaded.subjects, synth_prepared.subjects)
    sub = loaded.subset(np.flatnonzero(loaded.y == 0))
    assert len(sub) == int((loaded.y == 0).sum()) and sub.labels == loaded.labels
    cfg = DataConfig(path=str(synth_mug), labels=["happy", "sad"])
    two = prepare(cfg, tmp_path, progress=False)
    assert two.labels == ("happiness", "sadness")
    assert two.manifest["problem_counts"]["label_not_selected"] == 1


def test_no_path_is_an_error():
    with pytest.raises(DatasetError, match="no dataset path"):
        prepare(DataConfig())


def _prepared(labels, y, *, subjects=None, splits=None, soft=None, source="a"):
    from tinyfer.core.prepare import Prepared

    n = len(y)
    empty = np.array([""] * n)
    X = np.full((n, 48, 48), len(labels), np.uint8)
    return Prepared(
        X, np.array(y), tuple(labels), np.array(subjects or [""] * n),
        np.array(splits or [""] * n), np.array([f"{source}/{i}.png" for i in range(n)]), empty,
        np.full(n, -1), np.array(soft or np.zeros((n, 0)), np.float32),
        np.full((n, 48, 48), 255, np.uint8), sources=np.full(n, source),
        manifest={"detector": "mtcnn", "problem_counts": {"unreadable": 1}},
    )  # fmt: skip


def test_combine_maps_labels_keeps_votes_and_tells_datasets_apart():
    from tinyfer.core.prepare import combine

    votes = _prepared(("happiness", "neutral"), [0, 1], splits=["Training", "PublicTest"],
                      soft=[[0.7, 0.3], [0.2, 0.8]], source="ferplus")  # fmt: skip
    posed = _prepared(("anger", "happiness", "contempt"), [0, 2, 1],
                      subjects=["S010", "S010", "S011"], source="ckplus")  # fmt: skip
    both = combine([votes, posed])
    assert both.labels == ("anger", "happiness", "neutral", "contempt")
    assert [both.labels[i] for i in both.y] == [
        "happiness", "neutral", "anger", "contempt", "happiness",
    ]  # fmt: skip
    # Votes land in their labels' columns; a dataset without votes gets one-hot rows.
    assert np.allclose(both.soft[:2], [[0, 0.7, 0.3, 0], [0, 0.2, 0.8, 0]])
    assert np.allclose(both.soft[2:], [[1, 0, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0]])
    assert both.subjects.tolist() == ["", "", "ckplus:S010", "ckplus:S010", "ckplus:S011"]
    assert both.sources.tolist() == ["ferplus"] * 2 + ["ckplus"] * 3
    assert both.splits.tolist() == ["Training", "PublicTest", "", "", ""]
    assert both.X[:2].max() == 2 and both.X[2:].min() == 3  # rows stay with their faces
    assert both.manifest["counts"] == {"anger": 1, "happiness": 2, "neutral": 1, "contempt": 1}
    assert [s["name"] for s in both.manifest["sources"]] == ["ferplus", "ckplus"]
    assert both.manifest["problem_counts"] == {"unreadable": 2}
    # Two datasets of one name are told apart; sizes that differ cannot be combined.
    assert set(combine([posed, posed]).sources.tolist()) == {"ckplus1", "ckplus2"}
    small = dataclasses.replace(posed, X=posed.X[:, :32, :32])
    with pytest.raises(DatasetError, match="different sizes"):
        combine([votes, small])


def test_several_paths_prepare_each_and_combine(synth_mug, tmp_path):
    cfg = DataConfig(path=[str(synth_mug), str(synth_mug)], format=["mug", "auto"])
    both = prepare(cfg, tmp_path, progress=False)
    one = prepare(DataConfig(path=str(synth_mug)), tmp_path, progress=False)
    assert len(both) == 2 * len(one)
    assert np.array_equal(both.X, np.concatenate([one.X, one.X]))
    names = sorted(set(both.sources.tolist()))
    assert len(names) == 2 and len(set(both.subjects.tolist())) == 2 * len(set(one.subjects))


def test_spread_takes_faces_from_every_part_of_the_set(synth_prepared):
    data = load_prepared(synth_prepared.file)
    n = len(data)
    numbered = dataclasses.replace(data, X=np.arange(n).reshape(-1, 1, 1))  # face i holds i
    picked = numbered.spread(10).ravel()
    assert len(picked) == 10 and len(set(picked)) == 10 and picked[0] == 0
    assert np.diff(picked).max() <= n // 10 and picked[-1] >= n - 2 * (n // 10)
    assert len(data.spread(10 * n)) == n  # never more than there is


def test_replay_adds_training_faces_of_the_users_classes_only(synth_mug, ckplus_dir, tmp_path):
    three = ["anger", "happiness", "surprise"]
    own = prepare(DataConfig(path=str(ckplus_dir), format="ckplus", labels=three), tmp_path,
                  progress=False)  # fmt: skip
    parts = {"train": np.arange(0, len(own), 2), "val": np.arange(1, len(own), 4),
             "test": np.arange(3, len(own), 4)}  # fmt: skip
    cfg = DataConfig(path=str(ckplus_dir), replay=str(synth_mug), replay_share=0.1)
    merged, grown = with_replay(own, parts, cfg, tmp_path, seed=0, progress=False)
    added = grown["train"][len(parts["train"]) :]
    assert len(added) == round(len(parts["train"]) * 0.1 / 0.9)
    assert {k: v.tolist() for k, v in grown.items() if k != "train"} == {
        k: v.tolist() for k, v in parts.items() if k != "train"
    }  # validation and test: the user's faces only, as they were
    assert merged.labels == own.labels  # the replay set's other classes are left out
    assert set(merged.sources[added]) == {"subjects3"}
    assert (merged.sources[: len(own)] == "ckplus").all()
    np.testing.assert_array_equal(merged.X[: len(own)], own.X)
    again, _ = with_replay(own, parts, cfg, tmp_path, seed=0, progress=False)
    np.testing.assert_array_equal(again.X, merged.X)  # the same faces for the same seed
    most = dataclasses.replace(cfg, replay_share=0.9)
    everything, _ = with_replay(own, parts, most, tmp_path, seed=0, progress=False)
    replayable = prepare(cfg.replayed(list(own.labels)), tmp_path, progress=False)
    assert len(everything) == len(own) + len(replayable)  # fewer than asked: all of them
