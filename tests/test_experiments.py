"""The experiment runner on the small synthetic set: 2 variants x 3 subject-grouped folds."""

import json
import os

import numpy as np
import pytest

from tinyfer.core.config import TrainConfig, from_dict
from tinyfer.errors import SplitError
from tinyfer.evaluation.metrics import compute_metrics
from tinyfer.experiments.grid import fold_dir, make_variants, run_experiment
from tinyfer.experiments.stats import mcnemar, paired_test, summary


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
    (claim,) = results["claims"]  # the grid varies augment only: the other claim is left out
    assert claim["claim"] == "Augmentation improves accuracy" and claim["with"] == "augment=on"
    on, off = (results["variants"][n]["fold_accuracy"] for n in ("augment=on", "augment=off"))
    assert claim["differences"] == pytest.approx(np.subtract(on, off).tolist())
    assert claim["verdict"] in {"supported", "contradicted", "inconclusive"}
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


def test_leave_one_subject_out_gives_each_subject_its_own_test_fold(synth_prepared):
    from tinyfer.experiments.grid import make_folds

    cfg = _cfg(synth_prepared, protocol="loso")
    folds = make_folds(synth_prepared, cfg, repeat=0)
    subjects = synth_prepared.subjects
    assert len(folds) == len(set(subjects.tolist())) == 6
    for train, test in folds:
        (held,) = set(subjects[test].tolist())  # one subject, and all of its faces
        assert held not in set(subjects[train].tolist())
        assert len(train) + len(test) == len(subjects)


@pytest.mark.slow
def test_a_loso_experiment_trains_and_reports_one_fold_per_subject(synth_prepared, tmp_path):
    cfg = _cfg(synth_prepared, protocol="loso", grid={"model.dropout": [0.2]})
    exp = run_experiment(cfg, tmp_path / "exp", progress=False)
    assert json.loads((exp / "protocol.json").read_text())["folds"] == 6
    (variant,) = json.loads((exp / "results.json").read_text())["variants"].values()
    assert len(variant["fold_accuracy"]) == variant["accuracy"]["n"] == 6
    assert "one per subject" in (exp / "report.md").read_text()


_CRASH_ON_FOLD_1 = """
import ctypes, sys
import tinyfer.experiments.grid as experiment
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

    from tinyfer.core.config import to_dict

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


def _read(exp, variant, fold):
    with np.load(fold_dir(exp, variant, 0, fold) / "predictions.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def learnable(tmp_path_factory):
    """A synthetic set large enough to learn across subjects: 12 subjects, 2 takes each."""
    from tinyfer.core.config import DataConfig
    from tinyfer.core.prepare import prepare
    from tinyfer.core.synth import write_synthetic_mug

    root = tmp_path_factory.mktemp("learnable")
    tree = write_synthetic_mug(root / "tree", subjects=12, takes=2, frames=5, size=192)
    return prepare(DataConfig(path=str(tree)), root / "prepared", progress=False)


@pytest.mark.slow
def test_every_executor_gives_the_same_predictions(learnable, tmp_path):
    """Here, in 2 local processes, and as tasks of a local 2-CPU Ray instance, all with the
    default resources: for the same seeds, every fold's predictions and probabilities are
    identical, on a grid that learns (far from chance)."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    runs = {
        "here": {},
        "jobs": {"jobs": 2},
        "ray": {"executor": "ray", "jobs": 2},
    }
    grid = {"classify.lr": [0.03]}  # one variant: two folds already make two tasks to place
    for name, how in runs.items():
        cfg = _cfg(learnable, folds=2, grid=grid, **how)
        cfg.classify.epochs = 15
        cfg.augment.online, cfg.augment.offline_copies = False, 0
        run_experiment(cfg, tmp_path / name, progress=False)
    for fold in range(2):
        here = _read(tmp_path / "here", "lr=0.03", fold)
        for name in ("jobs", "ray"):
            other = _read(tmp_path / name, "lr=0.03", fold)
            assert other.keys() == here.keys()
            for key in here:
                np.testing.assert_array_equal(other[key], here[key], err_msg=f"{name} {key}")
    results = [json.loads((tmp_path / n / "results.json").read_text()) for n in runs]
    assert results[0]["variants"] == results[1]["variants"] == results[2]["variants"]
    chance = 1 / len(learnable.labels)
    for variant, r in results[0]["variants"].items():
        assert r["accuracy"]["mean"] > 2 * chance, (variant, r["accuracy"])
    for name in runs:
        protocol = json.loads((tmp_path / name / "protocol.json").read_text())
        assert protocol["torch_threads_per_training"] == 1


def test_the_executor_may_change_on_resume_but_not_what_is_trained(synth_prepared, tmp_path):
    from tinyfer.errors import ConfigError
    from tinyfer.experiments.grid import _start

    _start(tmp_path, _cfg(synth_prepared))
    _start(tmp_path, _cfg(synth_prepared, executor="ray", jobs=4, address="auto"))
    with pytest.raises(ConfigError, match=r"experiment.folds: 3 -> 2"):
        _start(tmp_path, _cfg(synth_prepared, folds=2))


def _dies_once(marker_dir: str, item: int) -> int:
    """Item 1's first try kills its worker process; item 2 raises."""
    import signal
    from pathlib import Path

    marker = Path(marker_dir) / f"{item}.tried"
    if item == 1 and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    if item == 2:
        raise ValueError("item 2 is bad")
    return item * item


def _check_outcomes(outcomes, started):
    by_item = {}
    for o in outcomes:
        assert o.item not in by_item, f"item {o.item} came back twice"
        by_item[o.item] = o
    assert sorted(by_item) == [0, 1, 2, 3]
    assert {i: by_item[i].result for i in (0, 1, 3)} == {0: 0, 1: 1, 3: 9}
    assert by_item[2].error == "ValueError: item 2 is bad"  # raised: reported, not retried


@pytest.mark.slow
def test_local_processes_rerun_a_killed_worker_and_report_a_failure(tmp_path):
    from tinyfer.experiments.executors import run_processes

    started = []
    outcomes = run_processes(_dies_once, [0, 1, 2, 3], str(tmp_path), jobs=2, threads=1,
                             retries=1, on_start=started.append)  # fmt: skip
    _check_outcomes(outcomes, started)
    # The killed item ran twice; an item running beside it when the pool broke may have too.
    assert started.count(1) == 2 and started.count(0) + started.count(3) == 2
    (tmp_path / "1.tried").unlink()
    (lost,) = run_processes(_dies_once, [1], str(tmp_path), jobs=2, threads=1, retries=0,
                            on_start=started.append)  # fmt: skip
    assert lost.error == "its worker process died (1 tries)" and lost.result is None


@pytest.mark.slow
def test_ray_reruns_a_killed_worker_and_reports_a_failure(tmp_path):
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    import sys

    from tinyfer.experiments.executors import run_ray

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers lack tests/
    started = []
    outcomes = run_ray(_dies_once, [0, 1, 2, 3], str(tmp_path), address=None, num_cpus=2,
                       cpus=1, gpus=0, retries=1, on_start=started.append)  # fmt: skip
    _check_outcomes(outcomes, started)
    assert (tmp_path / "1.tried").is_file()


def test_an_unreachable_ray_address_fails_fast_and_names_it():
    import time

    from tinyfer.errors import TinyferError
    from tinyfer.inference.cluster import connect

    pytest.importorskip("ray", reason="the ray extra is not installed")
    start = time.perf_counter()
    refused = r"cannot reach the Ray cluster at 127\.0\.0\.1:9 \(Connection refused\)"
    with pytest.raises(TinyferError, match=refused), connect("127.0.0.1:9"):
        pass
    malformed = "expected auto, HOST:PORT or ray://HOST:PORT"
    with pytest.raises(TinyferError, match=malformed), connect("ray://nowhere"):
        pass
    assert time.perf_counter() - start < 10


def test_a_bare_on_off_grid_is_read_as_augment_on_and_off():
    from tinyfer.core.config import TrainConfig, apply_override

    tree: dict = {}
    apply_override(tree, "experiment.grid={augment: [on, off]}")  # YAML: [true, false]
    names = [v.name for v in make_variants(from_dict(TrainConfig, tree))]
    assert names == ["augment=on", "augment=off"]


# Student's sleep data (Cushny & Peebles), as in R's t.test example: extra hours of sleep of
# ten patients under two drugs. R: paired t = -4.0621, df = 9, p = 0.002833,
# 95% CI of the mean difference [-2.4598858, -0.7001142].
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_intervals_match_published_values():
    from tinyfer.experiments.stats import mean_ci

    d = np.subtract(SLEEP_1, SLEEP_2)
    assert mean_ci(d) == pytest.approx((-2.4598858, -0.7001142), abs=1e-6)
    assert summary(d)["ci95"] == pytest.approx([-2.4598858, -0.7001142], abs=1e-6)
    assert summary(d)["mean"] == pytest.approx(-1.58)


def test_tests_match_exact_values_by_hand():
    # Wilcoxon, six positive differences without ties: two-sided exact p = 2 / 2**6.
    base = np.array([0.5, 0.6, 0.55, 0.7, 0.65, 0.6])
    result = paired_test(base + np.arange(1, 7) / 100, base)
    assert result["test"] == "Wilcoxon signed-rank" and result["p_value"] == pytest.approx(2 / 64)
    # McNemar exact: 2 samples only A got right, 8 only B: p = 2 * (1 + 10 + 45) / 1024.
    a = np.array([True] * 2 + [False] * 8 + [True] * 5)
    b = np.array([False] * 2 + [True] * 8 + [True] * 5)
    assert mcnemar(a, b)["p_value"] == pytest.approx(112 / 1024)


def test_equivalence_is_two_one_sided_tests():
    from scipy import stats

    from tinyfer.experiments.stats import mean_ci, tost

    d = np.subtract(SLEEP_1, SLEEP_2)
    for margin in (1.0, 2.0, 3.0):
        lower = stats.ttest_1samp(d, -margin, alternative="greater").pvalue
        upper = stats.ttest_1samp(d, margin, alternative="less").pvalue
        assert tost(d, margin) == pytest.approx(max(lower, upper), rel=1e-9)
        low90, high90 = mean_ci(d, 0.90)
        assert (tost(d, margin) < 0.05) == (-margin < low90 and high90 < margin)


def test_a_difference_the_folds_cannot_show_is_never_reported_as_no_effect():
    from tinyfer.experiments.stats import judge

    noisy = np.array([0.06, -0.05, 0.04, -0.07, 0.03, -0.02, 0.05, -0.04, 0.01, 0.0])
    assert judge(noisy, "equivalent", 0.02)["verdict"] == "inconclusive"
    assert judge(noisy, "better", 0.02)["verdict"] == "inconclusive"
    tight = np.array([0.002, -0.001, 0.001, -0.002, 0.0, 0.001, -0.001, 0.002, -0.002, 0.0])
    assert judge(tight, "equivalent", 0.02)["verdict"] == "supported"
    gain = np.array([0.03, 0.05, 0.04, 0.06, 0.02, 0.05, 0.04, 0.03, 0.05, 0.04])
    assert judge(gain, "better", 0.02)["verdict"] == "supported"
    assert judge(gain, "worse", 0.02)["verdict"] == "contradicted"
    assert judge(gain, "equivalent", 0.02)["verdict"] == "contradicted"


def test_threads_per_training_are_fixed_unless_asked_to_share():
    from tinyfer.experiments.grid import training_threads

    cfg = from_dict(TrainConfig, {"experiment": {"jobs": 2}})
    assert training_threads(cfg.experiment) == 1  # the default, whatever the machine
    shared = from_dict(TrainConfig, {"experiment": {"resources": {"cpus": 0}, "jobs": 1}})
    assert training_threads(shared.experiment) == len(os.sched_getaffinity(0))
    on_ray = from_dict(TrainConfig, {"experiment": {"resources": {"cpus": 0}, "executor": "ray"}})
    assert training_threads(on_ray.experiment) == 1


@pytest.mark.slow
def test_a_grid_over_training_subjects_draws_a_learning_curve(learnable, tmp_path):
    grid = {"split.train_subjects": [2, 0], "split.train_frames_per_take": [1]}
    cfg = _cfg(learnable, folds=2, grid=grid)
    cfg.classify.epochs = 2
    exp = run_experiment(cfg, tmp_path / "exp", progress=False)
    subjects, takes, frames = learnable.subjects, learnable.takes, learnable.frames
    assert len(takes) > len(set(takes))  # several frames per take to thin
    for fold in range(2):
        few = _read(exp, "train_subjects=2,train_frames_per_take=1", fold)
        every = _read(exp, "train_subjects=0,train_frames_per_take=1", fold)
        assert len(set(subjects[few["train_idx"]])) == 2
        # Each training take by its last frame alone.
        kept = every["train_idx"]
        assert len(set(takes[kept])) == len(kept)
        assert all(frames[i] == frames[takes == takes[i]].max() for i in kept)
        assert set(few["train_idx"]) < set(every["train_idx"])
        np.testing.assert_array_equal(few["test_idx"], every["test_idx"])
        np.testing.assert_array_equal(few["val_idx"], every["val_idx"])
    report = (exp / "report.md").read_text()
    assert "What the number of training subjects buys" in report
    assert (exp / "figures" / "dataset_size.png").stat().st_size > 1000
