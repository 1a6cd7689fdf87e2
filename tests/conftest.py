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
def ferplus_dir() -> Path:
    return _shared("ferplus")


@pytest.fixture(scope="session")
def ckplus_dir() -> Path:
    return _shared("ckplus")


@pytest.fixture(scope="session")
def mug_frame() -> Path:
    return _shared("mug_sample/img_0000.jpg")


@pytest.fixture(scope="session")
def synth_mug(tmp_path_factory) -> Path:
    """A small synthetic MUG tree: 6 subjects, 7 emotions, 1 take of 5 frames, 192 px."""
    from tinyfer.core.synth import write_synthetic_mug

    return write_synthetic_mug(
        tmp_path_factory.mktemp("synth"), subjects=6, takes=1, frames=5, size=192
    )


@pytest.fixture(scope="session")
def synth_prepared(synth_mug, tmp_path_factory):
    """The synthetic tree, prepared as the default DataConfig does (48 px crops)."""
    from tinyfer.core.config import DataConfig
    from tinyfer.core.prepare import prepare

    out = tmp_path_factory.mktemp("prepared")
    return prepare(DataConfig(path=str(synth_mug)), out, progress=False)


@pytest.fixture(scope="session")
def onnx_model(tmp_path_factory) -> Path:
    """A tiny model with random weights and the seven basic labels, exported to ONNX."""
    import torch

    from tinyfer.core.labels import EMOTIONS
    from tinyfer.core.model_files import ModelMeta
    from tinyfer.training.checkpoint import save_model
    from tinyfer.training.export import export_onnx
    from tinyfer.training.models import create_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("onnx")
    meta = ModelMeta("tiny", EMOTIONS, 48, 1, {"margin": 0.1, "align": False})
    save_model(folder / "model.pt", create_model("tiny", num_classes=7), meta)
    return export_onnx(folder / "model.pt", folder / "model.onnx").path


@pytest.fixture(scope="session")
def face_frames(synth_mug) -> list[Path]:
    """Frames of the synthetic tree, one face each (Haar finds them)."""
    return sorted(synth_mug.rglob("*.jpg"))[::7][:6]


@pytest.fixture(scope="session")
def write_video():
    """``write_video(path, frames, fps=10)``: frames (BGR uint8) to a video file with OpenCV."""

    def write(path: Path, frames, fps: float = 10.0, fourcc: str = "MJPG") -> Path:
        import cv2

        h, w = frames[0].shape[:2]
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
        assert writer.isOpened(), f"OpenCV cannot write {path}"
        for frame in frames:
            writer.write(frame)
        writer.release()
        return path

    return write
