import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tinyfer.cli import app
from tinyfer.core.labels import EMOTIONS
from tinyfer.core.model_files import ASSETS
from tinyfer.core.priors import (
    ClassPrior,
    effective_prior,
    parse_prior,
    prior_shift,
    shift_probabilities,
)
from tinyfer.errors import TinyferError

runner = CliRunner()
LABELS = ("anger", "happiness", "neutral")


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_balanced_is_bayes_rule_from_any_stored_adjustment():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 3))
    train = np.array([0.2, 0.3, 0.5])
    bias, temperature = -0.4 * np.log(train), 1.7
    stored = _softmax((z + bias) / temperature)  # what a logit-adjusted model file outputs
    recorded = ClassPrior.of(train, bias, temperature)
    balanced = shift_probabilities(stored, prior_shift("balanced", LABELS, recorded))
    np.testing.assert_allclose(balanced, _softmax(z / temperature - np.log(train)), atol=1e-6)
    weighted = shift_probabilities(stored, prior_shift({"neutral": 0.5}, LABELS, recorded))
    expected = _softmax(z / temperature - np.log(train) + np.log([1, 1, 0.5]))
    np.testing.assert_allclose(weighted, expected, atol=1e-6)
    assert prior_shift("training", LABELS, recorded) is None  # the stored output itself


def test_a_prior_round_trips_through_metadata():
    recorded = ClassPrior.of([2, 3, 5], [0.1, 0.2, 0.3], 2.0)
    assert recorded.training == (0.2, 0.3, 0.5) and recorded.applied == (0.05, 0.1, 0.15)
    assert ClassPrior.from_meta(json.dumps(recorded.to_meta())) == recorded
    assert ClassPrior.from_meta(None) is None


def test_the_default_is_balanced_unless_the_file_is_older():
    assert effective_prior(None, ClassPrior.of([1, 1, 2])) == "balanced"
    assert effective_prior(None, None) == "training"
    assert effective_prior({"anger": 2}, None) == {"anger": 2}


@pytest.mark.parametrize(
    "text, expected",
    [("balanced", "balanced"), (" training ", "training"),
     ("neutral=0.5, happy=2", {"neutral": 0.5, "happy": 2.0}), ('{"anger": 3}', {"anger": 3})],
)  # fmt: skip
def test_parse_prior(text, expected):
    assert parse_prior(text) == expected


@pytest.mark.parametrize(
    "prior, message",
    [("uniform", "unknown prior 'uniform'"),
     ({"angr": 1}, "unknown label 'angr'"),
     ({"contempt": 1}, "'contempt', a class the model does not have"),
     ({"anger": -1}, "must be finite and at least 0"),
     ({"anger": float("nan")}, "must be finite and at least 0"),
     ({"anger": "x"}, "is not a number"),
     (dict.fromkeys(LABELS, 0), "every weight is 0")],
)  # fmt: skip
def test_bad_priors_are_named(prior, message):
    with pytest.raises(TinyferError, match=message):
        prior_shift(prior, LABELS, ClassPrior.of([1, 1, 1]))


def test_an_older_file_takes_only_its_training_prior():
    with pytest.raises(TinyferError, match="does not record its training class frequencies"):
        prior_shift("balanced", LABELS, None, source="old.onnx")


def test_bundled_models_record_their_prior_and_both_kinds_agree():
    from tinyfer.inference.classifier import load_classifier
    from tinyfer.training.checkpoint import load_model

    for name in ("accurate", "fast"):
        _, onnx_meta = load_classifier(name)
        _, pt_meta = load_model(ASSETS / f"{name}.pt")
        assert onnx_meta.class_prior is not None
        np.testing.assert_allclose(onnx_meta.class_prior.training, pt_meta.class_prior.training)
        np.testing.assert_allclose(onnx_meta.class_prior.applied, pt_meta.class_prior.applied)
        assert abs(sum(onnx_meta.class_prior.training) - 1) < 1e-9


def test_recognizer_prior_moves_the_bundled_output(ckplus_dir):
    from PIL import Image

    from tinyfer.inference.predict import Recognizer

    files = sorted(ckplus_dir.glob("*/*.png"))[::10]
    faces = np.stack([np.asarray(Image.open(f).convert("L").resize((48, 48))) for f in files])
    stored = Recognizer("accurate", detector="none", prior="training")
    balanced = Recognizer("accurate", detector="none")
    assert balanced.prior == "balanced"
    p_train, p_bal = stored.predict_faces(faces), balanced.predict_faces(faces)
    neutral = stored.labels.index("neutral")
    assert p_bal[:, neutral].mean() < p_train[:, neutral].mean()  # FER+'s most frequent class
    np.testing.assert_allclose(p_bal.sum(1), 1, atol=1e-5)


@pytest.mark.parametrize(
    "prior, message",
    [("angr=1", "unknown label 'angr'"), ("contempt=2", "a class the model does not have"),
     ("anger=-1", "at least 0"), (",".join(f"{x}=0" for x in EMOTIONS), "every weight is 0"),
     ("nope", "give balanced or training")],
)  # fmt: skip
def test_a_bad_prior_is_one_line_and_exit_2_before_predicting(face_frames, prior, message):
    result = runner.invoke(app, ["predict", str(face_frames[0]), "--prior", prior,
                                 "--format", "json"])  # fmt: skip
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1


def test_predict_and_evaluate_name_their_prior(onnx_model, synth_prepared, tmp_path):
    # An older model file (no recorded prior) predicts under training, and refuses another.
    result = runner.invoke(app, ["predict", "--model", str(onnx_model), "--prior", "balanced",
                                 str(tmp_path)])  # fmt: skip
    assert result.exit_code == 2 and "only the prior 'training'" in result.stderr
    out = tmp_path / "ev"
    result = runner.invoke(app, ["evaluate", str(onnx_model), synth_prepared.file, "--json",
                                 "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((out / "metrics.json").read_text())["prior"] == "training"
    assert "class prior of the predictions" in (out / "report.html").read_text()
