"""Shared fixtures: the real data in ../shared/data (skipped when absent) and generated data."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _shared(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"real data {path} is absent (it lives in ../shared/data beside the repo)")
    return path


@pytest.fixture(scope="session")
def fer2013_dir() -> Path:
    return _shared("fer2013")


@pytest.fixture(scope="session")
def ckplus_dir() -> Path:
    return _shared("ckplus")


@pytest.fixture(scope="session")
def mug_frame() -> Path:
    return _shared("mug_sample/img_0000.jpg")


@pytest.fixture(scope="session")
def synth_mug(tmp_path_factory) -> Path:
    """A small synthetic MUG tree: 6 subjects, 7 emotions, 1 take of 5 frames, 192 px."""
    from tinyfer.synth import write_synthetic_mug

    return write_synthetic_mug(
        tmp_path_factory.mktemp("synth"), subjects=6, takes=1, frames=5, size=192
    )


@pytest.fixture(scope="session")
def synth_prepared(synth_mug, tmp_path_factory):
    """The synthetic tree, prepared (Haar faces, 48 px crops)."""
    from tinyfer.config import DataConfig
    from tinyfer.prepare import prepare

    out = tmp_path_factory.mktemp("prepared")
    return prepare(DataConfig(path=str(synth_mug)), out, progress=False)
