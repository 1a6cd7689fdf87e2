"""The two phases on the small synthetic set: a few epochs each, seconds per test."""

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tinyfer.core.config import TrainConfig, from_dict, to_dict
from tinyfer.errors import ConfigError, SplitError, TinyferError
from tinyfer.evaluation.calibration import softmax
from tinyfer.training.checkpoint import load_model
from tinyfer.training.phases import adjust, pretrain, train


def _cfg(synth_prepared, tmp_path, **sections) -> TrainConfig:
    # The data section equals synth_prepared's, so its cache is re-used: no test re-detects faces.
    base = {
        "data": {"path": str(synth_prepared.manifest["root"])},
        "model": {"name": "tiny"},
        "augment": {"offline_copies": 0},
        "pretrain": {"epochs": 2},
        "classify": {"epochs": 2, "patience": 0, "lr": 0.005},
        "split": {"test_fraction": 0.2, "val_fraction": 0.2},
        "trainer": {"batch_size": 32, "progress": False, "accelerator": "cpu", "devices": 1},
        "prepared_dir": str(os.path.dirname(synth_prepared.file)),
    }
    for key, value in sections.items():
        base.setdefault(key, {}).update(value)
    return from_dict(TrainConfig, base)


def _history(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_phase1_loss_falls(synth_prepared, tmp_path):
    cfg = _cfg(synth_prepared, tmp_path, pretrain={"epochs": 4})
    encoder = pretrain(cfg, tmp_path / "run")
    assert encoder.is_file() and (tmp_path / "run" / "reconstructions.png").is_file()
    rows = _history(tmp_path / "run" / "pretrain_history.csv")
    assert len(rows) == 4
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])


def _encoder_state(path):
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.mark.slow
def test_autoencoder_init_really_loads_the_phase1_encoder(synth_prepared, tmp_path):
    # Frozen for the whole of phase 2, the encoder must end exactly as phase 1 left it.
    cfg = _cfg(synth_prepared, tmp_path, classify={"freeze_epochs": 2})
    result = train(cfg, tmp_path / "ae")
    model, meta = load_model(result.checkpoint)
    saved = _encoder_state(tmp_path / "ae" / "encoder.pt")
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(value, saved[key]), key
    assert meta.labels == tuple(result.metrics["labels"])
    # The random-init run has no phase 1 and a different encoder.
    rnd = train(_cfg(synth_prepared, tmp_path, classify={"init": "random"}), tmp_path / "rnd")
    assert not (tmp_path / "rnd" / "encoder.pt").exists()
    other, _ = load_model(rnd.checkpoint)
    first = next(iter(saved))
    assert not torch.equal(other.encoder.state_dict()[first], saved[first])


@pytest.mark.slow
def test_pretrained_init_takes_the_encoder_of_another_run(synth_prepared, tmp_path):
    first = train(_cfg(synth_prepared, tmp_path, classify={"init": "random"}), tmp_path / "a")
    source, _ = load_model(first.checkpoint)
    # Frozen for the whole run, the encoder must stay the source run's exactly.
    cfg = _cfg(synth_prepared, tmp_path, classify={"init": "pretrained", "freeze_epochs": 2,
                                                   "pretrained": str(first.run_dir)})  # fmt: skip
    model, _ = load_model(train(cfg, tmp_path / "b").checkpoint)
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(value, source.encoder.state_dict()[key]), key
    other = _cfg(synth_prepared, tmp_path, model={"name": "small"},
                 classify={"init": "pretrained", "pretrained": str(first.run_dir)})  # fmt: skip
    with pytest.raises(TinyferError, match="another architecture.*choose model.name: tiny"):
        train(other, tmp_path / "c")
    with pytest.raises(ConfigError, match="needs classify.pretrained"):
        _cfg(synth_prepared, tmp_path, classify={"init": "pretrained"})
    # pretrain.adapt: phase 1 starts from the pretrained encoder (at a learning rate that moves
    # nothing, it ends where it began; from random weights it would be far from it).
    adapt = _cfg(synth_prepared, tmp_path, pretrain={"adapt": True, "epochs": 1, "lr": 1e-12},
                 classify={"init": "pretrained", "pretrained": str(first.run_dir)})  # fmt: skip
    run = train(adapt, tmp_path / "d")
    assert (run.run_dir / "pretrain_history.csv").is_file()
    adapted = torch.load(run.run_dir / "encoder.pt", weights_only=False)["state_dict"]
    for key, value in source.encoder.named_parameters():
        torch.testing.assert_close(adapted[key], value.detach(), atol=1e-6, rtol=0, msg=key)
    with pytest.raises(ConfigError, match="pretrain.adapt .* needs classify.init: pretrained"):
        _cfg(synth_prepared, tmp_path, pretrain={"adapt": True})


def test_distillation_and_encoder_learning_rate_reach_the_training(synth_prepared, tmp_path):
    from tinyfer.training.distill import teacher_probabilities
    from tinyfer.training.modules import ClassifierModule
    from tinyfer.training.phases import _setup

    first = train(_cfg(synth_prepared, tmp_path, classify={"init": "random"}), tmp_path / "a")
    cfg = _cfg(synth_prepared, tmp_path, classify={
        "soft_labels": False, "teachers": [str(first.run_dir)], "distill": 0.3,
        "encoder_lr": 0.1,
    })  # fmt: skip
    setup = _setup(cfg, synth_prepared, None)
    train_idx, y = setup.parts["train"], synth_prepared.y
    onehot = np.eye(len(synth_prepared.labels))[y]
    teacher = teacher_probabilities([str(first.run_dir)], synth_prepared.X[train_idx],
                                    synth_prepared.labels)  # fmt: skip
    np.testing.assert_allclose(setup.dm.y[train_idx], 0.7 * onehot[train_idx] + 0.3 * teacher,
                               atol=1e-6)  # fmt: skip
    val = setup.parts["val"]
    np.testing.assert_array_equal(setup.dm.y[val], onehot[val])
    groups = ClassifierModule(setup.model, cfg.classify).configure_optimizers()["optimizer"]
    lrs = [g["lr"] for g in groups.param_groups]
    assert lrs == pytest.approx([0.0005, 0.005])
    assert len(groups.param_groups[0]["params"]) == len(list(setup.model.encoder.parameters()))


def test_run_directory_has_everything(synth_prepared, tmp_path):
    cfg = _cfg(synth_prepared, tmp_path, augment={"offline_copies": 1},
               classify={"class_balance": "logit_adjustment"})  # fmt: skip
    result = train(cfg, tmp_path / "run")
    run = result.run_dir
    for name in ("config.yaml", "model.pt", "model.onnx", "metrics.json", "history.csv",
                 "curves.png", "encoder.pt", "reconstructions.png",
                 "pretrain_history.csv"):  # fmt: skip
        assert (run / name).is_file(), name
    # Predicting with the run takes its ONNX file: the same probabilities, and no torch.
    from tinyfer.core.model_files import resolve_model_file
    from tinyfer.inference.classifier import OnnxClassifier

    assert resolve_model_file(run, onnx=True) == run / "model.onnx"
    assert resolve_model_file(run) == run / "model.pt"
    torch_probs = load_model(run / "model.pt")[0].predict_proba(synth_prepared.X[:8])
    # The model train() returns is the one it saved (an experiment predicts with it).
    np.testing.assert_array_equal(result.model.predict_proba(synth_prepared.X[:8]), torch_probs)
    onnx_probs = OnnxClassifier(run / "model.onnx").predict_proba(synth_prepared.X[:8])
    assert np.abs(onnx_probs - torch_probs).max() < 1e-4
    script = (f"import sys; from tinyfer import Recognizer; Recognizer({str(run)!r}); "
              "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr[-2000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["train_size_after_expansion"] == 2 * metrics["split_sizes"]["train"]
    assert 0 <= metrics["test"]["accuracy"] <= 1 and metrics["test"]["n"] > 0
    assert sum(map(sum, metrics["test"]["confusion"])) == metrics["test"]["n"]
    # Class balance and temperature fitted on the validation split, stored in the model.
    adjustments, (model, _) = metrics["adjustments"], load_model(run / "model.pt")
    assert 0 <= metrics["test"]["ece"] <= 1 and "tau" in adjustments
    assert model.temperature == adjustments["temperature"] != 1.0
    assert model.logit_bias == adjustments["logit_bias"]
    bias = np.array(model.logit_bias or 0.0)
    faces = synth_prepared.X[:8]
    expected = softmax((model.logits(faces) + bias) / model.temperature)
    assert np.allclose(model.predict_proba(faces), expected, atol=1e-6)
    # Fitted again without retraining: switched off, then back to the run's own settings.
    assert adjust(run, class_balance="none", calibrate=False)["adjustments"] is None
    model, _ = load_model(run / "model.pt")
    assert model.temperature == 1.0 and model.logit_bias is None
    onnx_probs = OnnxClassifier(run / "model.onnx").predict_proba(synth_prepared.X[:8])
    assert np.abs(onnx_probs - model.predict_proba(synth_prepared.X[:8])).max() < 1e-4
    done = subprocess.run(_tinyfer("adjust", run), capture_output=True, text=True)
    assert done.returncode == 0 and "temperature" in done.stdout, done.stderr
    assert load_model(run / "model.pt")[0].temperature == adjustments["temperature"]
    assert TrainConfig.from_yaml(run / "config.yaml") == result_cfg(run)
    assert len(result.history) == 2
    # The benchmark summary script runs on it (writing to tmp, not the repository).
    script = Path(__file__).parents[1] / "benchmarks" / "train_summary.py"
    env = {**os.environ, "TINYFER_BENCH_RESULTS": str(tmp_path / "results")}
    done = subprocess.run([sys.executable, script, run, "tiny-run"], env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "results" / "tiny-run.json").read_text())
    assert summary["parameters"] == metrics["parameters"]
    assert summary["test"]["accuracy"] == metrics["test"]["accuracy"]


@pytest.mark.parametrize("soft_labels", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_soft_labels_are_what_the_classifier_learns(synth_prepared, tmp_path, soft_labels):
    """Faces marked by a band whose place says their label, with votes that put each face in
    the next class: trained on the votes, the model predicts that class; with
    ``soft_labels: false`` it learns the labels as before."""
    from tinyfer.core.prepare import Prepared

    n, per_class = 4, 40
    y = np.repeat(np.arange(n), per_class)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 60, (len(y), 48, 48), np.uint8)
    for i, k in enumerate(y):
        X[i, 12 * k : 12 * k + 12] += 150  # rows: a mirrored face keeps its label
    shifted = (y + 1) % n
    soft = np.full((len(y), n), 0.1 / (n - 1), np.float32)
    soft[np.arange(len(y)), shifted] = 0.9
    empty = np.array([""] * len(y))
    labels = ("anger", "happiness", "sadness", "neutral")
    data = Prepared(X, y, labels, np.array([f"s{i % 8}" for i in range(len(y))]), empty,
                    np.array([f"f{i}" for i in range(len(y))]), empty, np.full(len(y), -1),
                    soft, np.full_like(X, 255))  # fmt: skip
    cfg = _cfg(synth_prepared, tmp_path, trainer={"batch_size": 8},
               classify={"init": "random", "epochs": 5,
                                                   "soft_labels": soft_labels})  # fmt: skip
    result = train(cfg, tmp_path / "run", data=data)
    model, _ = load_model(result.checkpoint)
    predicted = model.predict_proba(X).argmax(1)
    learned, ignored = (shifted, y) if soft_labels else (y, shifted)
    assert (predicted == learned).mean() > 0.9 and (predicted == ignored).mean() < 0.1


def result_cfg(run):
    return from_dict(TrainConfig, yaml.safe_load((run / "config.yaml").read_text()))


@pytest.mark.slow
def test_resume_continues_from_the_saved_epoch(synth_prepared, tmp_path):
    cfg = _cfg(synth_prepared, tmp_path)
    first = train(cfg, tmp_path / "run")
    before = _history(tmp_path / "run" / "history.csv")
    pre_mtime = os.stat(tmp_path / "run" / "encoder.pt").st_mtime_ns
    longer = _cfg(synth_prepared, tmp_path, classify={"epochs": 4})
    again = train(longer, tmp_path / "run", resume=True)
    after = _history(tmp_path / "run" / "history.csv")
    assert [r["epoch"] for r in after] == ["1", "2", "3", "4"]  # counted from 1, as logged
    assert after[:2] == before  # the first two epochs were not run again
    assert os.stat(tmp_path / "run" / "encoder.pt").st_mtime_ns == pre_mtime  # nor phase 1
    assert again.metrics["classify"]["epochs_run"] == 4 and first.checkpoint == again.checkpoint
    c = again.metrics["classify"]  # images/s over the 2 epochs this session ran, not all 4
    size = again.metrics["train_size_after_expansion"]
    # "seconds" is rounded to 1 ms and images/s to 0.1: 4 epochs' worth would be twice as fast.
    lo, hi = size * 2 / (c["seconds"] + 5e-4) - 0.05, size * 2 / max(c["seconds"] - 5e-4, 1e-6)
    assert c["seconds"] > 0 and lo <= c["images_per_s"] <= hi + 0.05


def test_resume_with_another_model_is_refused(synth_prepared, tmp_path):
    train(
        _cfg(synth_prepared, tmp_path, classify={"init": "random", "epochs": 1}), tmp_path / "run"
    )
    other = _cfg(synth_prepared, tmp_path, model={"name": "small"}, classify={"init": "random"})
    with pytest.raises(ConfigError, match="model.name: 'tiny' -> 'small'"):
        train(other, tmp_path / "run", resume=True)
    with pytest.raises(TinyferError, match="already holds a run"):
        train(other, tmp_path / "run")


def test_resume_ignores_the_experiment_section_a_training_does_not_read(tmp_path):
    from tinyfer.training.run import check_run_dir, write_config

    cfg = TrainConfig()
    write_config(cfg, tmp_path)
    later = dataclasses.replace(
        cfg, experiment=dataclasses.replace(cfg.experiment, folds=5, jobs=2)
    )
    check_run_dir(later, tmp_path, resume=True)  # an experiment default changed since: fine
    with pytest.raises(ConfigError, match="seed: 0 -> 1"):
        check_run_dir(dataclasses.replace(later, seed=1), tmp_path, resume=True)


def test_replayed_faces_train_but_are_never_scored(synth_prepared, tmp_path):
    root = str(synth_prepared.manifest["root"])
    cfg = _cfg(synth_prepared, tmp_path, data={"replay": root, "replay_share": 0.5},
               classify={"init": "random", "epochs": 1})  # fmt: skip
    result = train(cfg, tmp_path / "run", onnx=False)
    sizes = result.metrics["split_sizes"]
    plain = train(_cfg(synth_prepared, tmp_path, classify={"init": "random", "epochs": 1}),
                  tmp_path / "plain", onnx=False).metrics["split_sizes"]  # fmt: skip
    assert sizes["train"] == 2 * plain["train"]  # as many replayed faces as the user's
    assert (sizes["val"], sizes["test"]) == (plain["val"], plain["test"])


def test_single_class_data_is_refused(synth_prepared, tmp_path):
    cfg = _cfg(synth_prepared, tmp_path, data={"labels": ["happiness"]})
    with pytest.raises(SplitError, match="single class"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "model.pt").exists()


def _write_cfg(tmp_path, cfg: TrainConfig):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(to_dict(cfg)))
    return path


def _tinyfer(*args):
    return [sys.executable, "-m", "tinyfer", *map(str, args)]


def test_resume_of_a_run_that_does_not_exist_is_refused(tmp_path):
    done = subprocess.run(_tinyfer("train", "configs/demo.yaml", "--out", tmp_path / "nope",
                                   "--resume"), capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2 and "nothing to resume" in done.stderr


def test_cli_rejects_a_bad_config_before_any_work(synth_prepared, tmp_path):
    cfg = _write_cfg(tmp_path, _cfg(synth_prepared, tmp_path))
    out = subprocess.run(_tinyfer("train", cfg, "--set", "classify.epoch=3", "--out",
                                  tmp_path / "run"), capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 2 and "classify.epoch" in out.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_killed_training_leaves_a_good_checkpoint_and_resumes(synth_prepared, tmp_path):
    cfg = _cfg(synth_prepared, tmp_path, classify={"init": "random", "epochs": 30})
    path = _write_cfg(tmp_path, cfg)
    run = tmp_path / "run"
    last = run / "checkpoints" / "classify" / "last.ckpt"
    proc = subprocess.Popen(_tinyfer("train", path, "--out", run), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists(), "a checkpoint was written before the kill"
    epoch = torch.load(last, weights_only=False, map_location="cpu")["epoch"]
    assert not list(run.rglob("*.tmp"))
    out = subprocess.run(_tinyfer("train", path, "--out", run, "--resume", "--set",
                                  "classify.epochs=" + str(epoch + 2)),
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    history = _history(run / "history.csv")
    assert len(history) == epoch + 2


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(synth_prepared, tmp_path):
    cfg = _cfg(synth_prepared, tmp_path, classify={"init": "random", "epochs": 2})
    path = _write_cfg(tmp_path, cfg)
    out = subprocess.run(
        _tinyfer("train", path, "--out", tmp_path / "ddp", "--devices", "2", "--strategy",
                 "ddp"), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["world_size"] == 2  # two processes (gloo on the CPU)
    assert metrics["classify"]["epochs_run"] == 2 and np.isfinite(metrics["test"]["accuracy"])


def test_a_damaged_last_checkpoint_falls_back_to_the_best_or_says_what_to_do(tmp_path, caplog):
    from tinyfer.training.fit import _resume_from

    folder = tmp_path / "checkpoints" / "classify"
    folder.mkdir(parents=True)
    last, best = folder / "last.ckpt", folder / "best.ckpt"
    torch.save({"epoch": 3}, last)
    assert _resume_from(last) == str(last)
    last.write_bytes(last.read_bytes()[:40])  # truncated mid-write by a full disk
    torch.save({"epoch": 1}, best)
    assert _resume_from(last) == str(best)
    assert "last.ckpt is damaged" in caplog.text
    best.write_bytes(b"\x00" * 10)
    with pytest.raises(TinyferError, match="last.ckpt is damaged .* Delete .*classify to train"):
        _resume_from(last)
    assert _resume_from(folder / "absent.ckpt") is None


def test_source_weights_set_each_datasets_share_of_the_draws():
    from tinyfer.training.data import FaceDataModule

    n_big, n_small = 300, 20
    y = np.arange(n_big + n_small) % 2
    X = np.zeros((len(y), 8, 8), np.uint8)
    sources = np.array(["big"] * n_big + ["small"] * n_small)
    parts = {"train": np.arange(len(y)), "val": np.arange(4)}
    dm = FaceDataModule(X, y, parts, sources=sources, source_weights={"big": 3, "small": 1})
    dm.setup()
    idx = np.array(list(iter(dm.train_dataloader().sampler)))
    share = (sources[idx] == "small").mean()
    assert abs(share - 0.25) < 0.06, share  # by size it would be 0.0625
    assert len(idx) == len(y)
    # With class balance too, classes are balanced within each dataset.
    y2 = np.where(sources == "small", 0, y)
    dm = FaceDataModule(X, y2, parts, sources=sources, source_weights={"big": 1, "small": 1},
                        balance="sampler")  # fmt: skip
    dm.setup()
    w = dm.draw_weights()
    assert np.isclose(w[sources == "small"].sum(), w[sources == "big"].sum())
    big = sources == "big"
    assert np.isclose(w[big & (y2 == 0)].sum(), w[big & (y2 == 1)].sum())


def test_training_on_two_datasets_reports_each(synth_prepared, tmp_path):
    cfg = _cfg(synth_prepared, tmp_path, classify={"init": "random"})
    cfg.data.path, cfg.data.weights = [cfg.data.path, cfg.data.path], [1.0, 2.0]
    done = subprocess.run(_tinyfer("train", _write_cfg(tmp_path, cfg), "--out", tmp_path / "run"),
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    test, name = metrics["test"], Path(cfg.data.paths[0]).name
    assert set(test["by_source"]) == {f"{name}1", f"{name}2"}  # one folder twice: told apart
    assert sum(m["n"] for m in test["by_source"].values()) == test["n"]
    assert metrics["split_sizes"]["train"] == 2 * len(synth_prepared) - test["n"] - metrics[
        "split_sizes"]["val"]  # fmt: skip
    for source in test["by_source"]:
        assert f"  {source}: accuracy" in done.stdout
    # Not a terminal: no bar, a line per epoch, counted from 1.
    assert "classify epoch 1/2: train_loss" in done.stderr and "epoch 2/2" in done.stderr
    assert "Epoch 0" not in done.stderr


def test_the_bar_counts_epochs_from_one():
    from types import SimpleNamespace

    from tinyfer.training.fit import ProgressBar

    bar = ProgressBar()
    bar._trainer = SimpleNamespace(max_epochs=8)
    assert bar._get_train_description(7).strip() == "Epoch 8/8"


def test_a_failed_preparation_leaves_no_run_behind(synth_prepared, tmp_path):
    from tinyfer.errors import TinyferError

    empty = tmp_path / "empty"
    (empty / "anger").mkdir(parents=True)
    cfg = _cfg(synth_prepared, tmp_path, data={"path": str(empty), "format": "folder"})
    with pytest.raises(TinyferError):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # so the same command may simply be run again
