import json

import pytest
from typer.testing import CliRunner

from tinyfer.cli import app

runner = CliRunner()


def test_inspect_json_on_ckplus(ckplus_dir):
    result = runner.invoke(app, ["data", "inspect", str(ckplus_dir), "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["samples"] == 981 and found["format"] == "ckplus"
    assert found["subjects"]["contempt"] > 0


def test_synth_prepare_inspect(tmp_path):
    result = runner.invoke(app, ["data", "synth", str(tmp_path / "demo"), "--subjects", "2",
                                 "--takes", "1", "--frames", "3", "--size", "192"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote 42 frames" in result.stdout
    data = tmp_path / "demo" / "subjects3"
    result = runner.invoke(app, ["data", "prepare", str(data), "--out", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    assert "of 42 samples kept" in result.stdout and "skipped_take 1" in result.stdout
    assert list((tmp_path / "p").glob("*.npz"))
    result = runner.invoke(app, ["data", "inspect", str(data)])
    assert result.exit_code == 0 and "42 images" in result.stdout


def test_errors_are_one_line_with_exit_status_2(tmp_path):
    result = runner.invoke(app, ["data", "inspect", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "no such file or folder" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["data", "prepare", str(tmp_path), "--layout", "xyz"])
    assert result.exit_code == 2 and "'xyz' is not one of" in result.output  # choices


def test_models_lists_the_bundled_models_and_the_zoo():
    result = runner.invoke(app, ["models"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in ("tiny", "small", "base", "plain", "accurate (default)", "accurate.md"):
        assert name in result.stdout


def test_evaluate_json(synth_prepared, tmp_path):
    from tinyfer.core.model_files import ModelMeta
    from tinyfer.training.checkpoint import save_model
    from tinyfer.training.models import create_model

    model = create_model("tiny", num_classes=len(synth_prepared.labels))
    save_model(
        tmp_path / "run" / "model.pt", model, ModelMeta("tiny", synth_prepared.labels, 48, 1, {})
    )
    result = runner.invoke(app, ["evaluate", str(tmp_path / "run"), synth_prepared.file, "--json",
                                 "--out", str(tmp_path / "ev")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n"] == len(synth_prepared)
    bad = runner.invoke(app, ["evaluate", str(tmp_path / "nothing"), synth_prepared.file])
    assert bad.exit_code == 2 and "no model file" in bad.output


def test_predict_json_and_exit_status(onnx_model, face_frames, tmp_path):
    args = ["predict", "--model", str(onnx_model), "--format", "json"]
    result = runner.invoke(app, [*args, str(face_frames[0]), str(tmp_path / "missing.jpg")])
    assert result.exit_code == 0, result.output  # one input worked
    (record,) = json.loads(result.stdout)
    assert record["file"] == str(face_frames[0]) and len(record["faces"]) == 1
    assert "missing.jpg: no such file or folder" in result.stderr
    assert "1 image(s): 1 face(s); 1 input(s) skipped" in result.stderr
    assert "without a face" not in result.stderr
    result = runner.invoke(app, [*args, str(tmp_path / "missing.jpg")])
    assert result.exit_code == 1  # nothing could be processed
    assert json.loads(result.stdout) == []


def test_evaluate_says_what_it_did_not_see(onnx_model, tmp_path, monkeypatch):
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    test = tmp_path / "fer" / "test"
    for i, label in enumerate(["happy", "sad", "angry"] * 3):
        (test / label).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(test / label / f"PrivateTest_{i}.png"), rng.integers(0, 255, (48, 48)))
    (test / "sad" / "PrivateTest_98.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (test / "happy" / "PrivateTest_99.jpg").write_bytes(b"")
    monkeypatch.chdir(tmp_path)  # results go under the current folder by default
    result = runner.invoke(app, ["evaluate", str(onnx_model), str(tmp_path / "fer")])
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())  # rich wraps lines
    assert "n=9:" in out and "over the 3 classes present" in out
    assert "not evaluated (2 samples preparation could not use): unreadable: 2" in out
    assert "PrivateTest_99.jpg: empty file" in out
    (saved,) = (tmp_path / "evaluations").glob("*-fer-all/metrics.json")
    metrics = json.loads(saved.read_text())
    assert metrics["not_evaluated"]["counts"] == {"unreadable": 2}
    assert metrics["macro_f1_over"] == ["anger", "happiness", "sadness"]
    # An unknown label folder: the advice names the flag evaluate has, and the flag works.
    (test / "bored").mkdir()
    cv2.imwrite(str(test / "bored" / "PrivateTest_50.png"), rng.integers(0, 255, (48, 48)))
    result = runner.invoke(app, ["evaluate", str(onnx_model), str(tmp_path / "fer")])
    assert result.exit_code == 2 and "--skip-unknown (data inspect, data prepare, evaluate)" in (
        " ".join(result.output.split())
    )
    result = runner.invoke(app, ["evaluate", str(onnx_model), str(tmp_path / "fer"),
                                 "--skip-unknown"])  # fmt: skip
    assert result.exit_code == 0 and "n=9:" in result.stdout, result.output


def test_a_malformed_file_costs_only_itself(onnx_model, face_frames, tmp_path):
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"P6\n128 m28\n255\n")
    args = ["predict", "--model", str(onnx_model), "--format", "json"]
    result = runner.invoke(app, [*args, str(bad), str(face_frames[0])])
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)  # the good file after the bad one is processed
    assert record["file"] == str(face_frames[0])
    assert "x.jpg: cannot read image header" in result.stderr


def test_a_bad_annotate_target_is_refused_before_any_output(onnx_model, face_frames, tmp_path):
    args = ["predict", "--model", str(onnx_model), "--format", "json", str(face_frames[0])]
    a_file = tmp_path / "taken"
    a_file.write_text("")
    for target, message in ((a_file, "needs a folder, and this is a file"),
                            (a_file / "sub", "cannot create the --annotate folder")):  # fmt: skip
        result = runner.invoke(app, [*args, "--annotate", str(target)])
        assert result.exit_code == 2 and message in result.output, result.output
        assert result.stdout == ""  # no half-written JSON; the error went to stderr


def test_predict_webcam_without_a_camera_says_so(onnx_model):
    result = runner.invoke(app, ["predict", "--model", str(onnx_model), "--webcam",
                                 "--camera", "97"])  # fmt: skip
    assert result.exit_code == 1
    assert "skipped: camera 97: no camera at this index" in result.stderr
    result = runner.invoke(app, ["predict", "--model", str(onnx_model)])
    assert result.exit_code == 2 and "at least one input" in result.output


def test_predict_with_a_bad_model_is_one_line(tmp_path, face_frames):
    bad = tmp_path / "m.onnx"
    bad.write_text("nope")
    result = runner.invoke(app, ["predict", "--model", str(bad), str(face_frames[0])])
    assert result.exit_code == 2 and "not an ONNX model" in result.output


@pytest.mark.slow
def test_export_reports_the_accuracy_cost_of_int8(synth_prepared, tmp_path, monkeypatch):
    from tinyfer.core.model_files import ModelMeta
    from tinyfer.training import checkpoint
    from tinyfer.training.models import create_model

    model = create_model("tiny", num_classes=len(synth_prepared.labels))
    checkpoint.save_model(tmp_path / "model.pt", model,
                          ModelMeta("tiny", synth_prepared.labels, 48, 1, {}))  # fmt: skip
    loads = []
    load = checkpoint.load_model
    monkeypatch.setattr(checkpoint, "load_model", lambda path: loads.append(path) or load(path))
    result = runner.invoke(app, ["export", str(tmp_path / "model.pt"), "--onnx",
                                 str(tmp_path / "m.onnx"), "--int8", "--data",
                                 synth_prepared.file, "--faces", "64"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "max abs difference" in result.stdout
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("accuracy on all"))
    assert f"(n={len(synth_prepared)})" in line and "int8 ONNX" in line and "points)" in line
    assert len(loads) == 1  # the model.pt read once, for the data settings and the export
    result = runner.invoke(app, ["export", str(tmp_path / "model.pt"), "--onnx",
                                 str(tmp_path / "q.onnx"), "--int8"])  # fmt: skip
    assert result.exit_code == 2 and "calibration" in result.output


def test_bench_json(onnx_model):
    result = runner.invoke(app, ["bench", "--model", str(onnx_model), "--repeats", "2", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["faces_found"] == 1 and figures["classify_ms"] > 0


def test_predict_says_why_an_image_may_have_no_face(onnx_model, tmp_path):
    import cv2
    import numpy as np

    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((300, 400), 128, np.uint8))
    result = runner.invoke(app, ["predict", "--model", str(onnx_model), str(blank)])
    assert result.exit_code == 0  # processed: an empty faces list is not an error
    assert "no face" in result.stdout
    assert "1 image(s) or frame(s) without a face" in result.stderr
    assert "10% of the image's shorter side" in result.stderr  # MTCNN's default


@pytest.mark.parametrize(
    ("args", "module", "extra"),
    [(["train", "configs/demo.yaml"], "torch", "train"),
     (["serve"], "fastapi", "serve"), (["evaluate", "fast", "x"], "matplotlib", "eval"),
     (["experiment", "configs/demo.yaml", "--executor", "ray", "--out", "/nonexistent/x"],
      "ray", "ray")],
)  # fmt: skip
def test_commands_that_need_an_extra_say_so_without_it(args, module, extra):
    """The light install has no extras: simulated by making ``import MODULE`` fail."""
    import subprocess
    import sys

    script = (f"import sys; sys.modules[{module!r}] = None; from tinyfer.cli import main; "
              f"sys.argv = ['tinyfer', *{args!r}]; main()")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    expected = f"needs {module}, which comes with the {extra} extra: pip install 'tinyfer[{extra}]'"
    assert expected in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


def test_library_chatter_is_muted_unless_verbose(onnx_model, tmp_path):
    """FFmpeg's own log line for a broken MP4 reaches stderr only with -v."""
    import subprocess
    import sys

    clip = tmp_path / "broken.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 8)
    args = [sys.executable, "-m", "tinyfer", "predict", "--model", str(onnx_model), str(clip)]
    quiet = subprocess.run(args, capture_output=True, text=True)
    loud = subprocess.run([*args[:3], "-v", *args[3:]], capture_output=True, text=True)
    assert "moov atom not found" in loud.stderr  # the chatter exists...
    assert "moov atom not found" not in quiet.stderr  # ...and is muted by default
    assert "broken.mp4: not a video OpenCV can read" in quiet.stderr


def test_options_built_from_a_config_take_its_defaults_and_choices():
    import typer
    from typer.testing import CliRunner

    from tinyfer.cli import _config_options
    from tinyfer.core.config import DataConfig

    seen = []
    cmd = typer.Typer()

    @cmd.command()
    @_config_options(DataConfig, ("img_size", "frames", "align"))
    def show(settings: dict | None = None):
        seen.append(settings)

    runner = CliRunner()
    assert runner.invoke(cmd, []).exit_code == 0
    assert runner.invoke(cmd, ["--img-size", "64", "--frames", "all", "--align"]).exit_code == 0
    assert seen == [{"img_size": 48, "frames": "apex", "align": False},
                    {"img_size": 64, "frames": "all", "align": True}]  # fmt: skip
    assert runner.invoke(cmd, ["--frames", "every"]).exit_code == 2
    assert "Side of the square" in runner.invoke(cmd, ["--help"]).output


def test_models_lists_the_bundled_ones_without_torch():
    import subprocess
    import sys

    script = ("import sys; sys.modules['torch'] = None; from tinyfer.cli import main; "
              "sys.argv = ['tinyfer', 'models']; main()")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**__import__("os").environ, "COLUMNS": "200"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "accurate (default)" in done.stdout and "fast" in done.stdout
    assert "they need torch, which comes with the train extra" in done.stdout


def test_help_reads_as_unix_help():
    """Arguments in capitals, flags without a type (typer 0.27 writes {config}, 0.29 <bool>)."""
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "[OPTIONS] CONFIG" in result.output
    resume = next(line for line in result.output.splitlines() if "--resume" in line)
    assert "bool" not in resume.lower() and "Continue the run" in resume


def test_every_command_has_a_one_line_summary():
    """The command list shows a docstring's first paragraph as it is written, breaks too."""
    from tinyfer.cli import data_app

    for typer_app in (app, data_app):
        for command in typer_app.registered_commands:
            first = (command.callback.__doc__ or "").strip().split("\n\n")[0]
            assert first and "\n" not in first, (command.name, first)
