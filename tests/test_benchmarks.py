"""The benchmark scripts run on tiny inputs (their figures come from full runs, not CI)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "benchmarks"


def _run(script: str, *args: str, tmp_path: Path):
    env = {**os.environ, "TINYFER_BENCH_RESULTS": str(tmp_path)}
    done = subprocess.run([sys.executable, str(BENCH / script), *args], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


def _tiny_grid(synth_prepared):
    """One variant, two folds, one epoch of the tiny model on the synthetic set."""
    from tinyfer.core.config import TrainConfig, from_dict

    return from_dict(TrainConfig, {
        "data": {"path": synth_prepared.manifest["root"]}, "model": {"name": "tiny"},
        "classify": {"init": "random", "epochs": 1, "patience": 0},
        "trainer": {"batch_size": 32, "progress": False},
        "experiment": {"folds": 2, "grid": {"model.dropout": [0.2]}},
        "prepared_dir": os.path.dirname(synth_prepared.file),
    })  # fmt: skip


@pytest.mark.slow
def test_train_speed_runs(tmp_path):
    _run("train_speed.py", "--models", "tiny", "--batch", "4", "--steps", "1", "--name", "t",
         tmp_path=tmp_path)  # fmt: skip
    result = json.loads((tmp_path / "t.json").read_text())
    row = result["images_per_s"][0]
    assert row["model"] == "tiny" and row["channels_last"] > 0 and row["contiguous"] > 0
    assert result["machine"]["cores"] and result["versions"]["torch"]


@pytest.mark.slow
def test_bundle_model_runs_on_a_tiny_fer2013(tmp_path):
    """A fake FER2013 folder edition, one epoch of the bundled recipe, then the script."""
    import cv2
    import numpy as np

    from tinyfer.core.labels import EMOTIONS
    from tinyfer.training.checkpoint import load_model
    from tinyfer.training.export import Probabilities

    rng = np.random.default_rng(0)
    folders = {"Training": "train", "PublicTest": "test", "PrivateTest": "test"}
    names = {"anger": "angry", "happiness": "happy", "sadness": "sad"}
    data = tmp_path / "fer2013"
    for usage, folder in folders.items():
        for emotion in EMOTIONS:
            out = data / folder / names.get(emotion, emotion)
            out.mkdir(parents=True, exist_ok=True)
            for i in range(4):
                cv2.imwrite(str(out / f"{usage}_{i}.jpg"), rng.integers(0, 255, (48, 48), np.uint8))
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "tinyfer", "train", str(BENCH.parent / "configs" / "bundled.yaml"),
         "--out", str(run), "--set", f"data.path={data}", "--set", "classify.epochs=1",
         "--set", "trainer.progress=false"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    onnx = tmp_path / "assets" / "model.onnx"
    _run("bundle_model.py", str(run), "--name", "fast", "--eval", f"{data}:PrivateTest", "--eval",
         f"{data}:PublicTest", "--out", str(onnx), "--tta", tmp_path=tmp_path)  # fmt: skip
    result = json.loads((tmp_path / "bundled_fast.json").read_text())
    private, private_training, public, _ = result["evaluations"]
    assert private["n"] == 28 and public["split"] == "PublicTest" and result["tta"] == "hflip"
    assert [e["prior"] for e in result["evaluations"]] == ["balanced", "training"] * 2
    assert private_training["split"] == "PrivateTest" and private_training["n"] == 28
    assert private["without_training_copies"]["n"] <= 28
    assert result["onnx_vs_torch_max_abs_diff"] < 1e-4
    assert result["speed_one_thread"]["classify_ms"] > 0
    card = (tmp_path / "assets" / "model.md").read_text()
    assert f"| fer2013 PrivateTest | balanced | 28 | {private['accuracy']:.4f} |" in card
    assert f"| fer2013 PrivateTest | training | 28 | {private_training['accuracy']:.4f} |" in card
    assert 'Recognizer("fast")' in card
    assert (tmp_path / "bundled_fast_confusion.png").stat().st_size > 0
    assert (tmp_path / "assets" / "model.pt").is_file()
    # The file shipped is the run's model exported.
    from tinyfer.inference.classifier import OnnxClassifier

    faces = np.random.default_rng(1).integers(0, 255, (4, 48, 48), np.uint8)
    torch_model, _ = load_model(tmp_path / "assets" / "model.pt")
    expected = Probabilities(torch_model, tta=True).eval().predict_proba(faces)
    assert np.abs(OnnxClassifier(onnx).predict_proba(faces) - expected).max() < 1e-4


@pytest.mark.slow
def test_video_memory_runs_on_a_short_video(tmp_path, onnx_model):
    _run("video_memory.py", "--minutes", "0.05", "--model", str(onnx_model), "--name", "v",
         tmp_path=tmp_path)  # fmt: skip
    result = json.loads((tmp_path / "v.json").read_text())
    assert result["video"]["frames"] == 90
    assert "90 frames" in result["summary"] and result["peak_rss_mb"] > 0


@pytest.mark.slow
@pytest.mark.slow
def test_image_memory_runs(tmp_path, onnx_model):
    _run("image_memory.py", "--pixels", "200000", "--model", str(onnx_model), "--name", "im",
         tmp_path=tmp_path)  # fmt: skip
    r = json.loads((tmp_path / "im.json").read_text())
    refused = {i["image"]: i["exit_status"] for i in r["images"]}
    assert refused["1x50M PNG"] == 1 and refused["20000x20000 JPEG header"] == 1
    assert "too elongated" in r["images"][0]["stderr_first_line"] and r["within_limit"]


def test_speed_runs(tmp_path, onnx_model):
    _run("speed.py", "--models", str(onnx_model), "--torch-model",
         str(onnx_model.parent / "model.pt"), "--repeats", "2", "--batch", "4", "--name", "sp",
         tmp_path=tmp_path)  # fmt: skip
    result = json.loads((tmp_path / "sp.json").read_text())
    (row,) = result["onnxruntime"]
    assert row["threads"] == 1 and row["classify_ms"] > 0 and row["faces_found"] >= 1
    assert result["torch"]["classify_ms"] > 0


def test_detector_sweep_runs(tmp_path):
    _run("detector_sweep.py", "--repeats", "1", "--crops", "3", "--min-face", "0.2",
         "--scale-factor", "1.2", "--name", "ds", tmp_path=tmp_path)  # fmt: skip
    (row,) = json.loads((tmp_path / "ds.json").read_text())["rows"]
    assert row["detect_ms"] > 0 and row["found"]["drawn 896 px faces"] == 1.0


@pytest.mark.slow
def test_faces_in_photos_runs(tmp_path, fer2013_dir, ckplus_dir):
    _run("faces_in_photos.py", "--faces", "6", "--repeats", "1", "--name", "fp",
         tmp_path=tmp_path)  # fmt: skip
    result = json.loads((tmp_path / "fp.json").read_text())
    mtcnn = result["detectors"][0]
    assert mtcnn["detector"].startswith("mtcnn") and mtcnn["MUG frame: faces"] == 1
    assert mtcnn["recall CK+48"] >= 5 / 6  # posed faces, 10-40% of the photo
    assert result["accuracy"]["CK+48"]["faces"] >= 5  # contempt left out


@pytest.mark.slow
def test_tracking_runs(tmp_path, ckplus_dir, onnx_model):
    small = ["--frames", "12", "--flicker-subjects", "1", "--segment-seconds", "0.2"]
    _run("tracking.py", *small, "--smooth", "0.25", "--model", str(onnx_model), "--name", "tr",
         tmp_path=tmp_path)  # fmt: skip
    result = json.loads((tmp_path / "tr.json").read_text())
    rows = result["tracking"]
    assert [(r["faces"], r["detect_every"]) for r in rows] == [
        (n, e) for n in (1, 4) for e in (1, 2, 5, 10)
    ]
    assert all(r["frames"] == 12 and r["shared"] == 0 and r["fps"] > 0 for r in rows)
    assert set(result["flicker"]) >= {"raw", "smoothed 0.25 s", "truth_changes"}


@pytest.mark.slow
def test_fold_tta_runs(synth_prepared, tmp_path):
    from tinyfer.experiments.grid import run_experiment

    cfg = _tiny_grid(synth_prepared)
    exp = run_experiment(cfg, tmp_path / "exp", progress=False)
    _run("fold_tta.py", str(exp), "ft", tmp_path=tmp_path)
    (variant,) = json.loads((tmp_path / "ft.json").read_text())["variants"].values()
    saved = json.loads((exp / "results.json").read_text())
    (plain,) = saved["variants"].values()
    assert variant["fold_accuracy"] == pytest.approx(plain["fold_accuracy"])
    assert variant["folds"] == 2 and len(variant["fold_accuracy_tta"]) == 2


@pytest.mark.slow
def test_serve_load_runs(tmp_path, mug_frame):
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    _run("serve_load.py", "--clients", "1", "3", "--requests", "6", "--image", str(mug_frame),
         "--name", "sl", tmp_path=tmp_path)  # fmt: skip
    result = json.loads((tmp_path / "sl.json").read_text())
    assert [r["clients"] for r in result["load"]] == [1, 3]
    assert all(r["ok"] == 6 and r["errors"] == 0 for r in result["load"])
    assert result["direct_recognizer_ms"] > 0 and result["server_rss_mb_end"] > 0


@pytest.mark.slow
def test_executors_benchmark_runs_and_compares(synth_prepared, tmp_path):
    import yaml

    from tinyfer.core.config import to_dict

    cfg = _tiny_grid(synth_prepared)
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump(to_dict(cfg)))
    # Ray against the others is tests/test_experiments.py's (every executor, the same
    # predictions); here the script's comparison, on the two executors without Ray.
    _run("executors.py", str(config), "--out", str(tmp_path / "exp"), "--name", "e",
         "--runs", "here", "jobs2", tmp_path=tmp_path)  # fmt: skip
    result = json.loads((tmp_path / "e.json").read_text())
    assert {n: r["trainings"] for n, r in result["runs"].items()} == {"here": 2, "jobs2": 2}
    assert result["identical_predictions"] == {"here_vs_jobs2": True}


@pytest.mark.slow
def test_predict_throughput_runs(onnx_model, face_frames, tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    import shutil

    folder = tmp_path / "faces"
    folder.mkdir()
    for i, frame in enumerate(face_frames):
        shutil.copy(frame, folder / f"{i}.jpg")
    _run("predict_throughput.py", str(folder), "--workers", "1", "--model", str(onnx_model),
         "--name", "p", tmp_path=tmp_path)  # fmt: skip
    runs = json.loads((tmp_path / "p.json").read_text())["runs"]
    assert runs["here"]["images"] == runs["ray1"]["images"] == len(face_frames)
    assert runs["here"]["faces"] == runs["ray1"]["faces"] > 0


@pytest.mark.slow
def test_prepare_cost_runs(synth_mug, tmp_path):
    _run("prepare_cost.py", str(synth_mug), "--name", "p", tmp_path=tmp_path)
    result = json.loads((tmp_path / "p.json").read_text())
    assert result["samples_read"] >= result["samples_kept"] > 0
    assert result["peak_rss_mb"] > 0 and result["wall_seconds"] > 0


def test_every_published_figure_is_recorded():
    """benchmarks/README.md, the model cards, README.md's results: every figure recorded."""
    done = subprocess.run([sys.executable, str(BENCH / "figures.py")], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout


def test_figures_check_flags_what_is_not_recorded(tmp_path):
    sys.path.insert(0, str(BENCH))
    try:
        import figures
    finally:
        sys.path.remove(str(BENCH))
    recorded = [0.6826414, 1.067236, 3524128, 4031.0]
    text = (
        "PrivateTest 68.26%, per face 1.07 ms, 3.5 MB, 67 min.\n"
        "Made up: 71.40% and 0.93 ms; target >= 71%; +2.6 points; Python 3.11.\n"
        "\nWithdrawn: 64.25% was read off a console.\n"
    )
    assert figures.unrecorded(text, recorded) == [(2, "0.93ms"), (2, "71.40%")]


def test_paired_folds_compares_separate_experiments_on_the_same_folds_only(tmp_path):
    protocol = {"dataset": "d", "format": "mug", "samples": 9, "subjects": 6,
                "labels": ["anger", "happiness"], "protocol": "subject", "folds": 3,
                "repeats": 1, "seeds": [0]}  # fmt: skip

    def summary(name, variants, **changed):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"name": name, "protocol": {**protocol, **changed},
                                    "variants": {v: {"accuracy": {"mean": sum(f) / 3},
                                                     "fold_accuracy": f}
                                                 for v, f in variants.items()}}))  # fmt: skip
        return str(path)

    base = summary("base", {"a": [0.5, 0.6, 0.7], "b": [0.1, 0.1, 0.1]})
    other = summary("other", {"x": [0.6, 0.6, 0.9]})
    _run("paired_folds.py", base, "a", other, "--name", "p", tmp_path=tmp_path)
    result = json.loads((tmp_path / "p.json").read_text())
    assert result["baseline"] == "base: a"
    compared = result["comparisons"]["other: x"]
    assert compared["differences"] == pytest.approx([0.1, 0.0, 0.2])
    assert compared["test"] == "paired t-test"  # fewer than 6 non-zero differences
    shifted = summary("shifted", {"x": [0.6, 0.6, 0.9]}, seeds=[1])
    env = {**os.environ, "TINYFER_BENCH_RESULTS": str(tmp_path)}
    for args, message in (
        ((base, "a", shifted), "shifted: not the same folds as base (seeds"),
        ((base, "c", other), "base: no variant 'c' (it has: a, b)"),
    ):
        done = subprocess.run([sys.executable, str(BENCH / "paired_folds.py"), *args, "--name",
                               "q"], capture_output=True, text=True, env=env)  # fmt: skip
        assert done.returncode != 0 and message in done.stderr, done.stderr
    assert not (tmp_path / "q.json").exists()
