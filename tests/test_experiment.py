"""The experiment runner on the small synthetic set: 2 variants x 3 subject-grouped folds."""

import json
import os

import numpy as np
import pytest

from tinyfer.config import TrainConfig, from_dict
from tinyfer.errors import SplitError
from tinyfer.evaluation.experiment import fold_dir, make_variants, run_experiment
from tinyfer.evaluation.metrics import compute_metrics
from tinyfer.evaluation.stats import mcnemar, paired_test, summary


def _cfg(synth_prepared, **experiment) -> TrainConfig:
    return from_dict(TrainConfig, {
        "data": {"path": synth_prepared.manifest["root"]},
        "model": {"name": "tiny"},
        "classify": {"init": "random", "epochs": 1, "patience": 0},
        "trainer": {"batch_size": 32, "progress": False, "accelerator": "cpu", "devices": 1},
        "experiment": {"folds": 3, "grid": {"augment": ["on", "off"]}, **experiment},
        "prepared_dir": os.path.dirname(synth_prepared.file),
    })  # fmt: skip


def test_default_grid_is_the_thesis_grid(synth_prepared):
    cfg = from_dict(TrainConfig, {})
    names = [v.name for v in make_variants(cfg)]
    assert names == ["augment=on,init=autoencoder", "augment=on,init=random",
                     "augment=off,init=autoencoder", "augment=off,init=random"]  # fmt: skip
    off = make_variants(cfg)[3].cfg
    assert not off.augment.online and off.augment.offline_copies == 0
    assert off.classify.init == "random"


@pytest.mark.slow
def test_experiment_folds_aggregation_report_and_resume(synth_prepared, tmp_path):
    cfg = _cfg(synth_prepared)
    exp = run_experiment(cfg, tmp_path / "exp", progress=False)
    results = json.loads((exp / "results.json").read_text())
    subjects = synth_prepared.subjects
    for variant, summary_ in results["variants"].items():
        tested = []
        for fold in range(3):
            p = np.load(fold_dir(exp, variant, 0, fold) / "predictions.npz")
            test, train, val = p["test_idx"], p["train_idx"], p["val_idx"]
            # Subject-disjoint: test vs training and validation, and training vs validation.
            assert not set(subjects[test]) & set(subjects[np.concatenate([train, val])])
            assert not set(subjects[train]) & set(subjects[val])
            tested.extend(test.tolist())
            recomputed = compute_metrics(p["y_true"], p["y_pred"], synth_prepared.labels)
            assert summary_["fold_accuracy"][fold] == pytest.approx(recomputed["accuracy"])
        assert sorted(tested) == list(range(len(synth_prepared)))  # each sample once
        expected = summary(summary_["fold_accuracy"])
        assert summary_["accuracy"]["mean"] == pytest.approx(expected["mean"])
        assert summary_["accuracy"]["ci95"] == pytest.approx(expected["ci95"], nan_ok=True)
    comp = results["comparisons"][0]
    a, b = results["variants"][comp["a"]], results["variants"][comp["b"]]
    expected = paired_test(a["fold_accuracy"], b["fold_accuracy"])
    assert comp["accuracy"]["mean_difference"] == pytest.approx(expected["mean_difference"])
    assert comp["accuracy"]["test"] == expected["test"]
    hits = {}
    for name in (comp["a"], comp["b"]):
        hit = np.zeros(len(synth_prepared), bool)
        for fold in range(3):
            p = np.load(fold_dir(exp, name, 0, fold) / "predictions.npz")
            hit[p["test_idx"]] = p["y_true"] == p["y_pred"]
        hits[name] = hit
    assert comp["mcnemar"] == mcnemar(hits[comp["a"]], hits[comp["b"]])
    for name in ("report.md", "report.html", "protocol.json", "config.yaml"):
        assert (exp / name).is_file()
    html = (exp / "report.html").read_text()
    assert "data:image/png;base64," in html and "subject-grouped" in html
    # Resume: finished folds are skipped; a missing one is re-run.
    kept = fold_dir(exp, "augment=on", 0, 0) / "predictions.npz"
    redo = fold_dir(exp, "augment=off", 0, 2) / "predictions.npz"
    before = os.stat(kept).st_mtime_ns
    redo.unlink()
    run_experiment(cfg, exp, progress=False)
    assert os.stat(kept).st_mtime_ns == before and redo.is_file()


def test_impossible_folds_are_refused_before_training(synth_prepared, tmp_path):
    with pytest.raises(SplitError, match="10 folds need at least 10 subjects; the data has 6"):
        run_experiment(_cfg(synth_prepared, folds=10), tmp_path / "exp", progress=False)
    assert not (tmp_path / "exp").exists()


@pytest.mark.slow
def test_random_protocol_is_labelled_leaky(synth_prepared, tmp_path):
    cfg = _cfg(synth_prepared, protocol="random", folds=2, grid={"model.dropout": [0.2]})
    exp = run_experiment(cfg, tmp_path / "exp", progress=False)
    assert "Leakage warning" in (exp / "report.md").read_text()


_CRASH_ON_FOLD_1 = """
import ctypes, sys
import tinyfer.evaluation.experiment as experiment
from tinyfer.cli import app
real = experiment._run_fold
def crashing(data, cfg, variant, fold, out, repeat):
    if out.name == "fold01":
        ctypes.string_at(0)  # a native crash, as oneDNN's was
    return real(data, cfg, variant, fold, out, repeat)
experiment._run_fold = crashing
app(sys.argv[1:])
"""


@pytest.mark.slow
def test_a_native_crash_names_the_fold_and_the_next_run_resumes_it(synth_prepared, tmp_path):
    import subprocess
    import sys

    import yaml

    from tinyfer.config import to_dict

    config = tmp_path / "exp.yaml"
    cfg = _cfg(synth_prepared, folds=3, grid={"model.dropout": [0.2]})
    config.write_text(yaml.safe_dump(to_dict(cfg)))
    args = ["experiment", str(config), "--out", str(tmp_path / "exp")]
    env = {**os.environ, "COLUMNS": "300"}  # log lines unwrapped
    crashed = subprocess.run([sys.executable, "-c", _CRASH_ON_FOLD_1, *args],
                             capture_output=True, text=True, env=env)  # fmt: skip
    assert crashed.returncode != 0
    assert "Fatal Python error: Segmentation fault" in crashed.stderr
    assert "repeat 0, fold 1: training in" in crashed.stderr, crashed.stderr[-3000:]
    assert "in crashing" in crashed.stderr  # faulthandler's traceback
    resumed = subprocess.run([sys.executable, "-m", "tinyfer", *args],
                             capture_output=True, text=True, env=env)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "stopped while training dropout=0.2, repeat 0, fold 1" in " ".join(
        resumed.stderr.split()
    )
    assert not (tmp_path / "exp" / "running.json").exists()
    assert (tmp_path / "exp" / "results.json").is_file()
