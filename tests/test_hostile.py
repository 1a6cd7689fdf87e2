"""Hostile inputs, end to end: a corpus of bad names, shapes, links, special files and videos
through `tinyfer predict` and the service's uploads. Every bad input is named (escaped) and
skipped, every good one predicted, nothing hangs, nothing prints a traceback or a raw control
character. Each defect found from outside adds a case here."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

#: File names that must reach every message as written, escaped where unprintable.
NAMES = [
    "x[/y].jpg",  # rich markup, across a folder
    "[bold red]loud[/].jpg",
    "\x1b[31mred.jpg",  # ANSI colour
    "\x1b]0;title\x07.jpg",  # OSC: sets the terminal's title
    "new\nskipped: forged.jpg",  # a newline that would forge a message line
    "tab\there.jpg",
    "\u202eevil.gpj.jpg",  # bidi override
    "ünïcødé 😀.jpg",
    "-rf.jpg",
    "n" * 200 + ".jpg",
]


def _escaped(name: str) -> str:
    from tinyfer.core.terminal import printable

    return printable(name, one_line=True)


@pytest.fixture(scope="module")
def corpus(face_frames, write_video, tmp_path_factory):
    """``(folder, good files, bad files)``: good ones are read (all but one pixel and the video
    hold a face); bad ones must be skipped."""
    root = tmp_path_factory.mktemp("hostile")
    face = face_frames[0].read_bytes()
    good, bad = [], []
    for name in NAMES:
        path = root / "names" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(face)
        good.append(path)
    shapes = root / "shapes"
    shapes.mkdir()
    Image.new("L", (50_000_000, 1), 90).save(shapes / "strip_1x50M.png", compress_level=9)
    cv2.imwrite(str(shapes / "one_pixel.png"), np.zeros((1, 1), np.uint8))
    frame = cv2.imread(str(face_frames[0]))
    Image.fromarray(frame[:, :, ::-1]).convert("CMYK").save(shapes / "cmyk.jpg")
    rgba16 = (np.dstack([frame, np.full(frame.shape[:2], 255, np.uint8)]).astype(np.uint16)) * 257
    cv2.imwrite(str(shapes / "rgba16.png"), rgba16)
    good += [shapes / "cmyk.jpg", shapes / "rgba16.png", shapes / "one_pixel.png"]
    (shapes / "[red]truncated.jpg").write_bytes(face[: len(face) // 3])
    (shapes / "\x1b[2Jempty.png").write_bytes(b"")
    (shapes / "text.png").write_text("not an image")
    bad += [shapes / n for n in ("strip_1x50M.png", "[red]truncated.jpg", "\x1b[2Jempty.png",
                                 "text.png")]  # fmt: skip
    links = root / "links"
    links.mkdir()
    os.symlink("absent.jpg", links / "dangling.jpg")
    os.symlink("/dev/zero", links / "zero.jpg")
    os.symlink(".", links / "loop")
    os.mkfifo(links / "pipe.jpg")
    (links / "folder.jpg").mkdir()
    bad += [links / n for n in ("dangling.jpg", "zero.jpg", "loop", "pipe.jpg")]
    videos = root / "videos"
    videos.mkdir()
    clip = write_video(videos / "clip.avi", [frame] * 6)
    good.append(clip)
    (videos / "cut.avi").write_bytes(clip.read_bytes()[:2000])
    (videos / "text.mp4").write_text("not a video")
    bad += [videos / "cut.avi", videos / "text.mp4"]
    return root, good, bad


def _predict(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyfer", "predict", *args, "--detector",
                           "haar", "--threads", "1"], capture_output=True, text=True,
                          errors="surrogateescape", timeout=600)  # fmt: skip


def test_predict_names_every_bad_input_and_predicts_every_good_one(corpus):
    root, good, bad = corpus
    done = _predict(str(root))
    assert done.returncode == 0, done.stderr[-2000:]
    for stream in (done.stdout, done.stderr):
        assert "Traceback" not in stream
        assert not set(stream) & {"\x1b", "\x07", "\u202e"}, "a raw control character"
    skipped = [line for line in done.stderr.splitlines() if line.startswith("skipped: ")]
    for path in bad:
        assert sum(_escaped(str(path)) in line for line in skipped) == 1, (path, skipped)
    assert len(skipped) == len(bad), skipped  # nothing else, nothing forged
    for path in good:
        assert _escaped(str(path)) in done.stdout, path
    assert f"{len(bad)} input(s) skipped" in done.stderr


def test_json_output_names_each_good_file_once(corpus):
    root, good, _ = corpus
    done = _predict(str(root), "--format", "json")
    records = json.loads(done.stdout)
    files = {r["file"] for r in records}
    assert files == {str(p) for p in good}
    with_faces = [p for p in good if p.suffix != ".avi" and p.name != "one_pixel.png"]
    assert all(r["faces"] for r in records if r["file"] in {str(p) for p in with_faces})


def test_service_uploads_of_the_corpus_never_fail_with_500(corpus):
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    from fastapi.testclient import TestClient

    from tinyfer.inference.serve import ServeConfig, create_app

    _, good, bad = corpus
    client = TestClient(create_app(ServeConfig()), raise_server_exceptions=False)
    images = [p for p in good + bad if p.suffix in (".jpg", ".png") and p.is_file()
              and not p.is_symlink() and p.stat().st_size < 1_000_000]  # fmt: skip
    for path in images:
        name = path.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        done = client.post("/v1/predict?detector=haar", files=[("files", (name, path.read_bytes(),
                                                            "image/jpeg"))])  # fmt: skip
        assert done.status_code in (200, 400, 413, 422), (path, done.status_code, done.text)
        body = done.json()
        assert "Traceback" not in done.text
        if path in good:
            assert done.status_code == 200, (path, done.text)
            assert bool(body["results"][0]["faces"]) == (path.name != "one_pixel.png"), path
        else:
            assert set(body) == {"error"}, (path, done.text)
