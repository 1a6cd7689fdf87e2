import json

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
    result = runner.invoke(app, ["data", "prepare", str(tmp_path), "--format", "xyz"])
    assert result.exit_code == 2 and "format: 'xyz' is not allowed" in result.output


def test_models_lists_the_zoo():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    for name in ("tiny", "small", "base", "plain"):
        assert name in result.stdout


def test_evaluate_json(synth_prepared, tmp_path):
    from tinyfer.checkpoint import ModelMeta, save_model
    from tinyfer.models import create_model

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
