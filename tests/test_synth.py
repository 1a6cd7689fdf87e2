import numpy as np

from tinyfer.core.labels import EMOTIONS
from tinyfer.core.synth import PROFILES, draw_face, make_identity, write_synthetic_mug


def test_layout_is_mugs(tmp_path):
    root = write_synthetic_mug(tmp_path, subjects=3, takes=2, frames=4, size=64)
    assert root.name == "subjects3"
    assert sorted(p.name for p in (root / "001").iterdir()) == sorted(EMOTIONS)
    assert (root / "002" / "session0" / "fear" / "take001" / "img_0003.jpg").is_file()
    assert (root / "001" / "neutral" / "take099end").is_dir()
    assert len(list(root.rglob("*.jpg"))) == 3 * 7 * 2 * 4 + 1


def test_same_seed_same_faces(tmp_path):
    a = write_synthetic_mug(tmp_path / "a", subjects=1, takes=1, frames=2, size=64, seed=3)
    b = write_synthetic_mug(tmp_path / "b", subjects=1, takes=1, frames=2, size=64, seed=3)
    fa = (a / "001" / "anger" / "take000" / "img_0001.jpg").read_bytes()
    assert fa == (b / "001" / "anger" / "take000" / "img_0001.jpg").read_bytes()


def test_expressions_change_the_face_and_identities_differ():
    rng = np.random.default_rng(0)
    ident = make_identity(rng)
    zero = np.zeros(len(PROFILES["neutral"]))

    def face(actions):
        return draw_face(ident, actions, np.random.default_rng(1), 128).astype(float)

    neutral = face(zero)
    for emotion in ("happiness", "surprise", "anger"):
        changed = np.abs(face(np.array(PROFILES[emotion])) - neutral).max(axis=2) > 25
        assert changed.sum() > 20, emotion
    # Fear and surprise overlap more with each other than with happiness.
    fear, surprise = np.array(PROFILES["fear"]), np.array(PROFILES["surprise"])
    happy = np.array(PROFILES["happiness"])
    assert np.linalg.norm(fear - surprise) < np.linalg.norm(fear - happy)
    other = make_identity(np.random.default_rng(5))
    assert other != ident
