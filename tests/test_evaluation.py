import json

import numpy as np
import pytest

from tinyfer.core.model_files import ModelMeta
from tinyfer.core.prepare import Prepared
from tinyfer.errors import TinyferError
from tinyfer.evaluation.evaluate import evaluate, evaluate_arrays
from tinyfer.evaluation.metrics import compute_metrics
from tinyfer.training.checkpoint import save_model
from tinyfer.training.models import create_model


class _Oracle:
    """Predicts from a lookup of the faces' first pixel: a model whose answers we know."""

    def __init__(self, answers: dict[int, int], n_classes: int):
        self.answers, self.n = answers, n_classes

    def predict_proba(self, faces):
        out = np.zeros((len(faces), self.n))
        out[np.arange(len(faces)), [self.answers[int(f[0, 0])] for f in faces]] = 1
        return out


def _data(labels, y):
    n = len(y)
    X = np.zeros((n, 48, 48), np.uint8)
    X[:, 0, 0] = np.arange(n)
    empty = np.array([""] * n)
    return Prepared(
        X,
        np.array(y),
        tuple(labels),
        empty,
        empty,
        np.array([f"f{i}" for i in range(n)]),
        empty,
        np.full(n, -1),
        np.zeros((n, 0), np.float32),
        np.full((n, 48, 48), 255, np.uint8),
    )


def test_metrics_by_hand():
    m = compute_metrics(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), ["a", "b", "c"])
    assert m["accuracy"] == 0.75 and m["confusion"] == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert m["balanced_accuracy"] == pytest.approx(0.75)
    # c never occurs: the macro-F1 is over a and b only.
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_labels_matched_by_name_and_unknown_classes_reported():
    # Data in CK+'s order with contempt; the model knows FER2013's seven (no contempt).
    data = _data(["anger", "happiness", "contempt"], [0, 1, 2, 2, 1])
    model_labels = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
    oracle = _Oracle({0: 0, 1: 3, 4: 6}, 7)  # sample 4 (happiness) predicted neutral
    result = evaluate_arrays(oracle, model_labels, data)
    assert result.excluded == {"contempt": 2}
    assert result.y_true.tolist() == [0, 3, 3]
    assert result.metrics["n"] == 3 and result.metrics["accuracy"] == pytest.approx(2 / 3)
    assert result.metrics["confusion"][3][6] == 1


def test_no_known_label_is_an_error():
    with pytest.raises(TinyferError, match="no sample has a label the model knows"):
        evaluate_arrays(_Oracle({}, 2), ("fear", "sadness"), _data(["contempt"], [0]))


def test_evaluate_writes_metrics_and_figures(synth_prepared, tmp_path):
    model = create_model("tiny", num_classes=len(synth_prepared.labels))
    meta = ModelMeta("tiny", synth_prepared.labels, 48, 1, {"margin": 0.1})
    run = tmp_path / "run"
    save_model(run / "model.pt", model, meta)
    result, out = evaluate(run, synth_prepared.file, out_dir=tmp_path / "ev", progress=False)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["n"] == len(synth_prepared) == result.metrics["n"]
    assert (out / "confusion.png").is_file() and (out / "misclassified.png").is_file()
    assert "data:image/png;base64," in (out / "report.html").read_text()
    assert f"faces evaluated | {saved['n']}" in (out / "report.md").read_text()
    assert sum(map(sum, saved["confusion"])) == saved["n"]


def test_evaluate_refuses_faces_of_another_size(synth_prepared, tmp_path):
    model = create_model("tiny", num_classes=7, img_size=64)
    save_model(tmp_path / "m.pt", model, ModelMeta("tiny", synth_prepared.labels, 64, 1, {}))
    with pytest.raises(TinyferError, match="faces are 48x48, the model takes 64x64"):
        evaluate(tmp_path / "m.pt", synth_prepared.file, progress=False)
    model48 = create_model("tiny", num_classes=7)
    save_model(tmp_path / "m48.pt", model48, ModelMeta("tiny", synth_prepared.labels, 48, 1, {}))
    with pytest.raises(TinyferError, match="split 'PrivateTest' not in the data"):
        evaluate(tmp_path / "m48.pt", synth_prepared.file, split="PrivateTest", progress=False)


def test_evaluation_without_the_test_faces_copied_in_training(tmp_path):
    import dataclasses

    from tinyfer.core.prepare import _write
    from tinyfer.evaluation.evaluate import copies_in

    data = _data(("anger", "happiness"), [0, 1, 0, 1, 0, 1])
    splits = ["Training", "Training", "PrivateTest", "PrivateTest", "PrivateTest", "x"]
    data = dataclasses.replace(data, splits=np.array(splits))
    data.X[4] = data.X[0]  # a test face that is a copy of a training face
    training = data.subset(np.flatnonzero(data.splits == "Training"))
    test = data.subset(np.flatnonzero(data.splits == "PrivateTest"))
    assert copies_in(test, training).tolist() == [False, False, True]
    _write(data, tmp_path / "d.npz")
    model = create_model("tiny", num_classes=2)
    save_model(tmp_path / "m.pt", model, ModelMeta("tiny", data.labels, 48, 1, {}))
    result, out = evaluate(tmp_path / "m.pt", tmp_path / "d.npz", split="PrivateTest",
                           exclude_copies_of="Training", out_dir=tmp_path / "ev",
                           progress=False)  # fmt: skip
    saved = json.loads((out / "metrics.json").read_text())
    assert result.metrics["n"] == saved["n"] == 2
    assert saved["excluded_copies"] == {"of": "Training", "n": 1}
    assert "1 (copies of Training)" in (out / "report.md").read_text()


def test_a_runs_own_data_is_evaluated_on_its_held_out_faces(synth_prepared, tmp_path, caplog):
    """Given the dataset it was trained on, a run is evaluated on its own test part (prepared
    with its own data settings), never silently on its training faces."""
    import os

    import yaml

    from tinyfer.core.config import TrainConfig, from_dict, to_dict
    from tinyfer.core.splits import split_of_run
    from tinyfer.evaluation.evaluate import eval_set

    root = synth_prepared.manifest["root"]
    cache = os.path.dirname(synth_prepared.file)
    cfg = from_dict(TrainConfig, {"data": {"path": root}, "prepared_dir": cache})
    run = tmp_path / "run"
    meta = ModelMeta("tiny", synth_prepared.labels, 48, 1, {"margin": 0.1})
    save_model(run / "model.pt", create_model("tiny", num_classes=7), meta)
    (run / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg)))
    parts = split_of_run(synth_prepared, cfg)
    chosen = eval_set(run, meta, root, progress=False)
    assert chosen.of_run and chosen.split == "test"
    assert sorted(chosen.faces.paths.tolist()) == sorted(synth_prepared.paths[parts["test"]])
    assert len(chosen.everything) == len(synth_prepared)
    val = eval_set(run / "model.pt", meta, root, split="val", progress=False)
    assert len(val.faces) == len(parts["val"]) and val.of_run
    with caplog.at_level("WARNING"):
        everything = eval_set(run, meta, root, split="all", progress=False)
    assert len(everything.faces) == len(synth_prepared) and not everything.of_run
    assert "includes the faces it was trained on" in caplog.text
    # Another model file (no run beside it): the data's own splits, all by default.
    save_model(tmp_path / "loose.pt", create_model("tiny", num_classes=7), meta)
    loose = eval_set(tmp_path / "loose.pt", meta, synth_prepared.file, progress=False)
    assert loose.split == "all" and not loose.of_run
