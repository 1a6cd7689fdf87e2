import numpy as np
import pytest

from tinyfer.core.faces import crop_face
from tinyfer.core.io import iter_frames, load_image
from tinyfer.core.labels import EMOTIONS
from tinyfer.errors import TinyferError, VideoError
from tinyfer.inference.classifier import OnnxClassifier
from tinyfer.inference.predict import FramePrediction, Prediction, Recognizer


@pytest.fixture(scope="module")
def rec(onnx_model):
    return Recognizer(onnx_model, threads=1)


def _check(pred: Prediction, labels=EMOTIONS):
    assert set(pred.probabilities) == set(labels)
    assert sum(pred.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert pred.label == max(pred.probabilities, key=pred.probabilities.get)
    assert all(isinstance(v, int) for v in pred.box) and pred.box[2] > 0


def test_one_face_per_synthetic_frame_from_every_input_kind(rec, face_frames):
    from PIL import Image

    path = face_frames[0]
    bgr = load_image(path)
    by_kind = [rec.predict(path), rec.predict(str(path)), rec.predict(bgr),
               rec.predict(Image.open(path))]  # fmt: skip
    for preds in by_kind:
        assert len(preds) == 1
        _check(preds[0])
    # Same face, same box, same probabilities whichever way the image came in.
    ref = by_kind[0][0]
    for preds in by_kind[1:]:
        assert preds[0].box == ref.box
        assert preds[0].probabilities == pytest.approx(ref.probabilities, abs=1e-4)
    # MTCNN sees colour: the gray copy of the frame gives the same face, boxed a little apart.
    (gray,) = rec.predict(load_image(path, gray=True))
    _check(gray)
    assert all(abs(a - b) <= 0.15 * ref.box[2] for a, b in zip(gray.box, ref.box))


def test_probabilities_are_the_classifiers_on_the_models_crop(rec, onnx_model, face_frames):
    bgr = load_image(face_frames[1])
    gray = load_image(face_frames[1], gray=True)
    (face,) = rec.detector.detect(bgr)
    crop = crop_face(gray, face, size=48, margin=0.1)  # the fixture's model: the margin cut
    expected = OnnxClassifier(onnx_model).predict_proba(crop[None])[0]
    (pred,) = rec.predict(bgr)
    assert pred.box == face.box
    assert [pred.probabilities[n] for n in EMOTIONS] == pytest.approx(expected.tolist(), abs=1e-6)


def test_batch_equals_one_by_one(rec, face_frames):
    blank = np.full((200, 200), 128, np.uint8)
    batch = rec.predict_batch([*face_frames[:3], blank])
    assert len(batch) == 4 and batch[3] == []  # no face: an empty list, not an error
    for path, preds in zip(face_frames[:3], batch):
        single = rec.predict(path)
        assert [p.box for p in preds] == [p.box for p in single]
        assert preds[0].probabilities == pytest.approx(single[0].probabilities, abs=1e-5)


def test_predict_faces_takes_crops_of_any_size(rec):
    rng = np.random.default_rng(0)
    crops48 = rng.integers(0, 255, (5, 48, 48), np.uint8)
    probs = rec.predict_faces(crops48)
    assert probs.shape == (5, 7) and np.allclose(probs.sum(1), 1, atol=1e-5)
    big = [np.kron(c, np.ones((2, 2), np.uint8)) for c in crops48]  # 96x96, gray
    bgr = [np.repeat(c[..., None], 3, axis=2) for c in big]
    assert np.allclose(rec.predict_faces(big), probs, atol=0.05)
    assert np.allclose(rec.predict_faces(bgr), rec.predict_faces(big), atol=1e-6)


def test_detector_none_classifies_the_whole_image(onnx_model):
    rec = Recognizer(onnx_model, detector="none")
    (pred,) = rec.predict(np.zeros((64, 80), np.uint8))
    assert pred.box == (0, 0, 80, 64) and pred.score == 1.0


def test_video_is_streamed_frame_by_frame(rec, face_frames, tmp_path, write_video):
    frames = [load_image(p) for p in face_frames[:3]] * 4  # 12 frames
    video = write_video(tmp_path / "clip.avi", frames)
    out = rec.predict_video(video, every=3)
    assert not isinstance(out, list)  # a generator: nothing is decoded ahead
    got = list(out)
    assert [f.index for f in got] == [0, 3, 6, 9]
    assert [f.time for f in got] == pytest.approx([0.0, 0.3, 0.6, 0.9])
    assert all(isinstance(f, FramePrediction) and len(f.faces) == 1 for f in got)
    # MJPG re-encodes the pixels, so the box may move by a pixel or two.
    assert np.allclose(got[0].faces[0].box, rec.predict(frames[0])[0].box, atol=4)


def test_bad_videos_and_cameras_are_named(tmp_path):
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(VideoError, match=r"broken\.mp4"):
        list(iter_frames(garbage))
    with pytest.raises(VideoError, match="no such file"):
        list(iter_frames(tmp_path / "missing.mp4"))
    with pytest.raises(VideoError, match="camera 97"):
        list(iter_frames(97))


def test_bad_model_files(tmp_path, onnx_model):
    text = tmp_path / "model.onnx"
    text.write_text("not a model")
    with pytest.raises(TinyferError, match="not an ONNX model"):
        Recognizer(text)
    with pytest.raises(TinyferError, match="no model file"):
        Recognizer(tmp_path / "empty-run")
    pt = tmp_path / "model.pt"
    pt.write_bytes(b"junk")
    with pytest.raises(TinyferError, match="not a tinyfer model file"):
        Recognizer(pt)  # through the loader the training layer declares for .pt files
    other = tmp_path / "model.tflite"
    other.write_bytes(b"junk")
    with pytest.raises(TinyferError, match=r"model.tflite: no loader for .tflite .*onnx, pt"):
        Recognizer(other)


def test_a_label_list_that_does_not_match_the_outputs_is_refused(onnx_model, tmp_path):
    import json

    import onnx

    proto = onnx.load(onnx_model)
    for prop in proto.metadata_props:
        if prop.key == "labels":
            prop.value = json.dumps(["anger", "happiness"])
    onnx.save(proto, tmp_path / "liar.onnx")
    with pytest.raises(TinyferError, match="does not match its checksum"):
        Recognizer(tmp_path / "liar.onnx")  # edited after export
    from tinyfer.core.integrity import seal_onnx

    seal_onnx(tmp_path / "liar.onnx")  # edited and sealed again: the labels are checked too
    with pytest.raises(TinyferError, match="7 outputs but its metadata names 2 classes"):
        Recognizer(tmp_path / "liar.onnx")


def test_predict_command_does_not_import_torch(face_frames):
    import json
    import subprocess
    import sys

    code = (  # the bundled model, as a user's first call
        "import sys\n"
        "from tinyfer.cli import app\n"
        f"app(['predict', '--format', 'json', {str(face_frames[0])!r}], standalone_mode=False)\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning', 'kornia')]\n"
        "print('heavy modules:', heavy, file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)[0]["faces"]) == 1
    assert "heavy modules: []" in out.stderr


def test_public_names_import_lazily():
    import tinyfer

    assert tinyfer.Recognizer is Recognizer
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = tinyfer.nope


def test_a_small_image_without_a_found_face_is_taken_as_a_crop(onnx_model):
    noise = np.random.default_rng(1).integers(0, 255, (48, 48), np.uint8)
    (pred,) = Recognizer(onnx_model).predict(noise)
    assert pred.box == (0, 0, 48, 48) and pred.score == 0.0  # score 0: assumed, not detected
    assert Recognizer(onnx_model, small_images_are_faces=False).predict(noise) == []
    assert Recognizer(onnx_model).predict(np.full((200, 200), 90, np.uint8)) == []
    # Only a nearly square image of a plausible size passes for a crop.
    rng = np.random.default_rng(2)
    for shape in ((1, 1), (10, 10), (10, 200), (48, 90), (20, 20)):
        assert Recognizer(onnx_model).predict(rng.integers(0, 255, shape, np.uint8)) == [], shape
    with pytest.raises(TinyferError, match="10000x10 image is too elongated"):  # as a file is
        Recognizer(onnx_model).predict(rng.integers(0, 255, (10, 10000), np.uint8))


def test_float_crops_are_read_as_unit_range_and_bad_values_refused(rec):
    faces = np.random.default_rng(3).integers(0, 255, (4, 48, 48), np.uint8)
    expected = rec.predict_faces(faces)
    assert np.allclose(rec.predict_faces(faces / 255.0), expected, atol=1e-6)
    assert np.allclose(rec.predict_faces(faces.astype(np.float32)), expected, atol=1e-6)
    bad = faces / 255.0
    bad[0, 0, 0] = np.nan
    with pytest.raises(TinyferError, match="NaN"):
        rec.predict_faces(bad)
    with pytest.raises(TinyferError, match="-1 to"):
        rec.predict_faces(faces / 255.0 - 1)
    assert rec.predict_faces([]).shape == (0, len(rec.labels))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"scale_factor": 1.0}, "scale_factor"), ({"min_face": 0.0}, "min_face"),
     ({"threads": 0}, "threads"), ({"detector": "haar", "scale_factor": 3}, "scale_factor")],
)  # fmt: skip
def test_bad_arguments_are_refused_when_the_recognizer_is_made(onnx_model, kwargs, message):
    with pytest.raises(TinyferError, match=message):
        Recognizer(onnx_model, **kwargs)


def test_each_detector_searches_its_own_default_unless_told(onnx_model):
    """Haar on photos: 0.2 and step 1.2; MTCNN: its own 0.1; --min-face overrides both."""
    assert vars(Recognizer(onnx_model, detector="haar").detector).items() >= {
        "min_face": 0.2, "scale_factor": 1.2}.items()  # fmt: skip
    assert Recognizer(onnx_model, detector="mtcnn").detector.min_face == 0.1
    for name in ("haar", "mtcnn"):
        assert Recognizer(onnx_model, detector=name, min_face=0.3).detector.min_face == 0.3


def test_bundled_model_finds_the_mug_face(mug_frame):
    from tinyfer.core.model_files import BUNDLED_MODELS, DEFAULT_MODEL

    rec = Recognizer()
    assert rec.classifier.path == BUNDLED_MODELS[DEFAULT_MODEL] and rec.labels == EMOTIONS
    (face,) = rec.predict(mug_frame)
    _check(face)
    x, y, w, h = face.box  # MTCNN's box: forehead to chin, cheek to cheek
    assert 200 < x < 300 and 130 < y < 250 and 350 < w < 450 and 500 < h < 650


@pytest.mark.parametrize("name", ["accurate", "fast"])
def test_bundled_models_are_their_shipped_checkpoints_exported(name, fer2013_dir):
    """The ONNX file answers as the checkpoint beside it: to 1e-4 for fp32, on the class
    for an int8 file (its probabilities move by the quantisation)."""
    import onnx

    from tinyfer.core.model_files import BUNDLED_MODELS
    from tinyfer.training.checkpoint import load_model
    from tinyfer.training.export import Probabilities

    file = BUNDLED_MODELS[name]
    model, _ = load_model(file.with_suffix(".pt"))
    files = sorted((fer2013_dir / "test").rglob("PrivateTest_*.jpg"))[::30]
    faces = np.stack([load_image(f, gray=True) for f in files])
    clf = OnnxClassifier(file)
    torch_probs = Probabilities(model, tta=clf.tta == "hflip").eval().predict_proba(faces)
    onnx_probs = clf.predict_proba(faces)
    assert len(faces) > 100
    if any(n.op_type == "DequantizeLinear" for n in onnx.load(file).graph.node):
        agree = (torch_probs.argmax(1) == onnx_probs.argmax(1)).mean()
        assert agree > 0.93 and np.abs(torch_probs - onnx_probs).mean() < 0.02, agree
    else:
        assert np.abs(torch_probs - onnx_probs).max() < 1e-4
