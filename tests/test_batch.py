import csv
import io
import json
import os
import shutil

import numpy as np
import pytest

from tinyfer.core.io import load_image
from tinyfer.core.labels import EMOTIONS
from tinyfer.inference.batch import expand_inputs, run_predictions
from tinyfer.inference.predict import Recognizer


@pytest.fixture(scope="module")
def rec(onnx_model):
    return Recognizer(onnx_model, threads=1)


@pytest.fixture()
def inputs(face_frames, tmp_path, write_video):
    """A folder with 3 face images (one in a subfolder), a blank image, a text file; a video."""
    import cv2

    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for i, frame in enumerate(face_frames[:3]):
        shutil.copy(frame, folder / ("sub" if i == 2 else "") / f"face{i}.jpg")
    cv2.imwrite(str(folder / "blank.png"), np.full((120, 120), 200, np.uint8))
    (folder / "notes.txt").write_text("not media")
    frames = [load_image(p) for p in face_frames[:2]] * 3
    video = write_video(tmp_path / "clip.avi", frames)
    return folder, video


def run(rec, items, fmt, **kw):
    out, problems = io.StringIO(), []
    summary = run_predictions(rec, [str(i) for i in items], out, fmt=fmt,
                              on_problem=lambda s, m: problems.append((s, m)), **kw)  # fmt: skip
    return summary, out.getvalue(), problems


def test_folders_recurse_and_globs_expand(inputs, tmp_path):
    folder, _ = inputs
    files, problems, skipped = expand_inputs([str(folder), str(tmp_path / "*.avi"), "nope*.jpg"])
    names = sorted(p.name for p in files)
    assert names == ["blank.png", "clip.avi", "face0.jpg", "face1.jpg", "face2.jpg"]
    assert skipped == 1  # notes.txt
    assert problems == [("nope*.jpg", "no file matches this pattern")]


def test_json_records_images_and_video_frames(rec, inputs):
    folder, video = inputs
    summary, text, problems = run(rec, [folder, video], "json", every=2)
    records = json.loads(text)
    assert not problems
    assert summary.images == 4 and summary.videos == 1 and summary.frames == 3
    images = [r for r in records if "frame" not in r]
    frames = [r for r in records if "frame" in r]
    assert len(images) == 4 and [r["frame"] for r in frames] == [0, 2, 4]
    assert [r["time"] for r in frames] == pytest.approx([0.0, 0.2, 0.4])
    by_name = {r["file"].rsplit("/", 1)[-1]: r for r in images}
    assert by_name["blank.png"]["faces"] == []
    face = by_name["face0.jpg"]["faces"][0]
    assert set(face) == {"box", "score", "label", "probabilities", "landmarks"}
    assert len(face["landmarks"]) == 5  # MTCNN's points: eyes, nose, mouth corners
    assert sum(face["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert summary.faces == sum(len(r["faces"]) for r in records) == 6
    assert summary.without_face == 1  # the blank image


def test_csv_and_table_carry_the_same_predictions(rec, inputs):
    folder, video = inputs
    _, text, _ = run(rec, [folder], "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [k for k in rows[0] if k.startswith("p_")] == [f"p_{n}" for n in EMOTIONS]
    assert len(rows) == 4  # three faces, and one row for the blank image
    blank = next(r for r in rows if r["file"].endswith("blank.png"))
    assert blank["label"] == "" and blank["face"] == ""
    _, table, _ = run(rec, [folder], "table")
    lines = table.strip().splitlines()
    assert lines[0].split()[:3] == ["face", "label", "prob"]  # no video: no frame, time
    _, with_video, _ = run(rec, [folder, video], "table")
    header = with_video.splitlines()[0].split()
    assert header[:7] == ["frame", "time", "face", "track", "label", "prob", "smoothed"]
    _, nothing, _ = run(rec, [folder / "missing.jpg"], "table")
    assert nothing == ""  # no header for a run that predicted nothing
    for row in rows:
        if row["label"]:
            line = next(ln for ln in lines if ln.endswith(row["file"]))
            assert row["label"] in line and f"{row['x']},{row['y']}," in line


def test_bad_inputs_are_reported_and_the_batch_goes_on(rec, inputs, tmp_path):
    folder, _ = inputs
    (tmp_path / "fake.jpg").write_bytes(b"garbage")
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 500)
    (tmp_path / "doc.txt").write_text("hello")
    huge = tmp_path / "huge.png"
    from PIL import Image

    Image.new("L", (8000, 7000)).save(huge)  # 56 megapixels
    bad = [tmp_path / n for n in ("fake.jpg", "broken.mp4", "doc.txt", "huge.png", "missing.jpg")]
    summary, text, problems = run(rec, [*bad, folder / "face0.jpg"], "json")
    assert summary.images == 1 and len(json.loads(text)) == 1
    reasons = dict(problems)
    assert "corrupt" in reasons[str(bad[0])] or "not an image" in reasons[str(bad[0])]
    assert "not a video" in reasons[str(bad[1])]
    assert reasons[str(bad[2])] == "not an image or a video (unrecognised format)"
    assert "too large" in reasons[str(bad[3])] and "megapixels" in reasons[str(bad[3])]
    assert reasons[str(bad[4])] == "no such file or folder"
    assert len(summary.failed) == 5


def test_annotated_images_and_video(rec, inputs, tmp_path):
    import cv2

    folder, video = inputs
    out = tmp_path / "ann"
    summary, _, _ = run(rec, [folder, video], "json", annotate_dir=out, every=2)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["blank.png", "clip.mp4", "face0.jpg", "face1.jpg", "face2.jpg"]
    original = load_image(folder / "face0.jpg")
    drawn = load_image(out / "face0.jpg")
    assert original.shape == (192, 192, 3)
    assert drawn.shape == (360 + 28, 360 + 148 + 16, 3)  # enlarged for legible text, with
    # bands for the label and the panel (the face fills a small image)
    cap = cv2.VideoCapture(str(out / "clip.mp4"))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(5.0)  # the 10 fps source, every 2nd frame
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == summary.frames == 3


def test_annotation_draws_boxes_and_bars(rec, face_frames):
    from tinyfer.inference.annotate import annotate, canvas

    image = load_image(face_frames[0])
    preds = rec.predict(image)
    drawn = annotate(image, preds)
    plain = annotate(image, [])
    assert drawn.shape == plain.shape and (drawn != plain).any()
    _, scale, (ox, oy) = canvas(image)
    x, y, w, h = (round(v * scale) for v in preds[0].box)
    inside = (slice(oy + y + 20, oy + y + h - 20), slice(ox + x + 20, ox + x + w - 20))
    assert (drawn[inside] == plain[inside]).mean() > 0.98  # the face itself is left visible


def test_links_and_unreadable_folders_are_named_not_followed(tmp_path, monkeypatch):
    import os

    from tinyfer.inference.batch import expand_inputs

    root = tmp_path / "photos"
    (root / "ok").mkdir(parents=True)
    (root / "ok" / "a.jpg").write_bytes(b"x")
    os.symlink(root, root / "loop")  # a link back up: following it would never end
    os.symlink(root / "gone.jpg", root / "dangling.jpg")
    (root / "locked").mkdir()
    real_scandir = os.scandir

    def scandir(path):  # root can read any folder: make one unreadable by hand
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    files, problems, _ = expand_inputs([str(root)])
    assert files == [root / "ok" / "a.jpg"]
    assert dict(problems) == {
        str(root / "dangling.jpg"): "link to nothing (dangling), left out",
        str(root / "locked"): "folder cannot be read (Permission denied)",
        str(root / "loop"): "link to a folder, not followed",
    }
    (root / "ok" / "a.jpg").unlink()
    _, problems, _ = expand_inputs([str(root)])
    assert (str(root), "folder holds no image or video (1 folder(s) in it could not be read)") in (
        problems
    )


def test_a_video_cut_mid_stream_says_so(tmp_path, write_video, caplog):
    from tinyfer.core.io import iter_frames

    path = write_video(tmp_path / "clip.avi", [np.full((64, 64, 3), i * 8, np.uint8)
                                               for i in range(30)])  # fmt: skip
    assert len(list(iter_frames(path))) == 30 and "ended after" not in caplog.text
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    n = len(list(iter_frames(path)))
    assert n < 29 and f"ended after {n} of its 30 frames" in caplog.text


def test_odd_file_names_stay_valid_text_and_on_one_line():
    from tinyfer.inference.batch import printable_name

    raw = os.fsdecode(b"caf\xe9.jpg")  # Latin-1 bytes: not UTF-8
    assert printable_name(raw) == "caf\\xe9.jpg"
    printable_name(raw).encode("utf-8")  # no lone surrogate left
    assert json.loads(json.dumps(printable_name(raw))) == "caf\\xe9.jpg"
    assert printable_name("a\nb.jpg", one_line=True) == "a\\nb.jpg"
    assert printable_name("a\nb.jpg") == "a\nb.jpg"  # JSON and CSV quote it themselves


@pytest.mark.slow
def test_fuzzed_images_cost_only_themselves(tmp_path, onnx_model):
    """Hundreds of mutated images of every format predict reads (truncated, bytes flipped,
    junk inserted, headers broken): no traceback, valid JSON, every good file processed, every
    bad one named, memory bounded."""
    import resource
    import subprocess
    import sys

    import cv2

    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (64, 80, 3), np.uint8), (0, 0), 2)
    folder = tmp_path / "fuzz"
    folder.mkdir()
    good = []
    for ext in (".jpg", ".png", ".bmp", ".tif", ".webp", ".ppm", ".pgm", ".gif"):
        if ext == ".gif":  # OpenCV writes no GIF
            from PIL import Image

            out = io.BytesIO()
            Image.fromarray(base[..., ::-1]).save(out, "GIF")
            data = out.getvalue()
        else:
            ok, buf = cv2.imencode(ext, base if ext != ".pgm" else base[..., 0])
            assert ok, ext
            data = buf.tobytes()
        (folder / f"good{ext}").write_bytes(data)
        good.append(f"good{ext}")
        for k in range(50):
            b = bytearray(data)
            kind = k % 5
            if kind == 0:
                b = b[: rng.integers(1, len(b))]
            elif kind == 1:
                for i in rng.integers(0, len(b), 1 + k):
                    b[i] = rng.integers(0, 256)
            elif kind == 2:
                at = rng.integers(0, len(b))
                b[at:at] = rng.integers(0, 256, rng.integers(1, 64), dtype=np.uint8).tobytes()
            elif kind == 3:
                for i in rng.integers(0, min(len(b), 32), 3):
                    b[i] = rng.integers(0, 256)
            else:
                b = b[: len(b) // 2] + b[: len(b) // 2]
            (folder / f"m{k:02d}{ext}").write_bytes(bytes(b))
    n_files = len(list(folder.iterdir()))
    done = subprocess.run(
        [sys.executable, "-m", "tinyfer", "predict", "--model", str(onnx_model), "--format",
         "json", "--detector", "haar", str(folder)], capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 0, done.stderr[-2000:]
    records = json.loads(done.stdout)
    seen = {os.path.basename(r["file"]) for r in records}
    assert set(good) <= seen
    skipped = done.stderr.count("skipped: ")
    assert len(records) + skipped == n_files
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert peak_mb < 2000, peak_mb


@pytest.mark.slow
def test_ray_workers_give_the_same_records_and_problems(rec, onnx_model, inputs, tmp_path):
    """Two Ray workers on a local instance: the records of a local run (in another order:
    as inputs finish, a video's frames together and in order), the same bad inputs named,
    the same counts, and the annotated copies written."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    import functools

    from tinyfer.inference.batch import RayOptions

    folder, video = inputs
    (tmp_path / "fake.jpg").write_bytes(b"garbage")
    items = [folder, video, tmp_path / "fake.jpg", tmp_path / "missing.jpg"]
    here, text_here, problems_here = run(rec, items, "json", every=2)
    make = functools.partial(Recognizer, onnx_model, threads=1)
    on_ray, text_ray, problems_ray = run(rec, items, "json", every=2,
                                         ray=RayOptions(make, workers=2),
                                         annotate_dir=tmp_path / "ann")  # fmt: skip
    key = lambda r: (r["file"], r.get("frame", -1))  # noqa: E731
    records_here, records_ray = json.loads(text_here), json.loads(text_ray)
    assert sorted(records_ray, key=key) == sorted(records_here, key=key)
    frames = [r["frame"] for r in records_ray if "frame" in r]
    assert frames == [0, 2, 4]
    first = next(i for i, r in enumerate(records_ray) if "frame" in r)
    assert all("frame" in r for r in records_ray[first : first + 3])  # the video's, together
    assert sorted(problems_ray) == sorted(problems_here) and len(problems_ray) == 2
    for field in ("images", "videos", "frames", "faces", "without_face", "skipped"):
        assert getattr(on_ray, field) == getattr(here, field), field
    names = sorted(p.name for p in (tmp_path / "ann").iterdir())
    assert names == ["blank.png", "clip.mp4", "face0.jpg", "face1.jpg", "face2.jpg"]


def test_the_camera_is_not_sent_to_ray(rec):
    import functools

    from tinyfer.errors import TinyferError
    from tinyfer.inference.batch import RayOptions

    options = RayOptions(functools.partial(Recognizer), workers=1)
    with pytest.raises(TinyferError, match="--webcam reads this machine's camera"):
        run(rec, [], "json", camera=0, ray=options)
