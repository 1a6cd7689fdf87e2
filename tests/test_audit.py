import cv2
import numpy as np
import pytest

from tinyfer.core.audit import audit_dataset
from tinyfer.core.datasets import read_dataset


@pytest.mark.slow
def test_fer2013_flaws_listed_in_data_md_are_found(fer2013_dir):
    audit = audit_dataset(read_dataset(fer2013_dir), progress=False)
    assert audit.samples == 35887
    assert audit.duplicate_groups == 1516 and audit.duplicate_files == 3369
    assert sum(audit.cross_split_copies.values()) == 568
    assert len(audit.conflicting_groups) == 57
    assert len(audit.near_blank) == 13
    assert audit.counts["Training"]["disgust"] == 436
    assert audit.counts["Training"]["happiness"] == 7215
    assert audit.image_sizes == {"48x48": 35887} and audit.unreadable == []


def test_generated_flaws(tmp_path):
    rng = np.random.default_rng(0)
    face = rng.integers(0, 255, (48, 48), np.uint8)
    other = rng.integers(0, 255, (48, 48), np.uint8)
    for split, label, name, img in [
        ("train", "happy", "Training_1.png", face),
        ("train", "sad", "Training_2.png", face),  # same bytes, other label: a conflict
        ("train", "sad", "Training_3.png", other),
        ("test", "sad", "PublicTest_4.png", other),  # a test copy of a training image
        ("test", "happy", "PrivateTest_5.png", np.full((48, 48), 7, np.uint8)),  # blank
    ]:
        (tmp_path / split / label).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / split / label / name), img)
    (tmp_path / "test" / "happy" / "PrivateTest_6.png").write_bytes(b"\x89PNG broken")
    audit = audit_dataset(read_dataset(tmp_path), progress=False)
    assert audit.duplicate_groups == 2 and audit.duplicate_files == 4
    assert audit.duplicates_within_split == {"Training": 1}
    assert audit.cross_split_copies == {"PublicTest": 1}
    assert len(audit.conflicting_groups) == 1
    assert {label for _, label in audit.conflicting_groups[0]} == {"happiness", "sadness"}
    assert [p.rsplit("/", 1)[-1] for p in audit.near_blank] == ["PrivateTest_5.png"]
    assert [p.path.rsplit("/", 1)[-1] for p in audit.unreadable] == ["PrivateTest_6.png"]
    assert audit.to_dict()["conflicting_group_count"] == 1


def test_subjects_per_class(synth_mug):
    audit = audit_dataset(read_dataset(synth_mug), progress=False)
    assert audit.subjects == {label: 6 for label in audit.counts["all"]}
    assert audit.reader_problems[0].kind == "skipped_take"
