"""Names that are markup or hold terminal control characters are shown as written."""

import logging
import shutil

import pytest
from typer.testing import CliRunner

from tinyfer.cli import app
from tinyfer.core.terminal import PrintableRecords, console, printable

runner = CliRunner()
ESCAPE = "a\x1b]0;pwned\x07b\x1b[31m\u202e"  # an OSC title-set, a colour and a bidi override
MARKUP = "x[/y]"  # a closing tag with nothing open: rich's MarkupError when read as markup


def test_printable_writes_control_characters_as_escapes():
    assert printable(ESCAPE) == "a\\x1b]0;pwned\\x07b\\x1b[31m\\u202e"
    assert printable("plain [bold]name[/bold].jpg\nnext") == "plain [bold]name[/bold].jpg\nnext"


def test_the_consoles_read_no_markup(capsys):
    console().print(f"{MARKUP} [bold]{ESCAPE}[/bold]")
    out = capsys.readouterr().out
    assert "\x1b" not in out and "x[/y] [bold]a\\x1b]0;pwned" in out


def test_log_records_are_made_printable():
    record = logging.LogRecord("tinyfer", logging.WARNING, "", 0, "left out %s", (ESCAPE,), None)
    PrintableRecords().filter(record)
    assert record.getMessage() == f"left out {printable(ESCAPE)}"


@pytest.fixture
def hostile_tree(tmp_path, face_frames):
    """A folder-layout dataset whose files are named with markup and control characters: one
    good face, one file that is no image."""
    folder = tmp_path / "data" / "happiness"
    (folder / "x[").mkdir(parents=True)
    shutil.copy(face_frames[0], folder / f"{MARKUP}.jpg")  # x[/y].jpg: a folder and a file
    shutil.copy(face_frames[1], folder / f"{ESCAPE}.jpg")
    (folder / f"[bold]{ESCAPE}bad.png").write_bytes(b"not an image")
    return tmp_path / "data"


def _shown(result) -> str:
    assert "Traceback" not in result.output and "MarkupError" not in result.output, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output, repr(result.output)
    return result.output


def test_predict_shows_hostile_names_as_written(hostile_tree, onnx_model):
    result = runner.invoke(app, ["predict", str(hostile_tree / "happiness"), str(hostile_tree /
                                 "happiness" / f"{MARKUP}.jpg"), "--model", str(onnx_model),
                                 "--detector", "haar"])  # fmt: skip
    out = _shown(result)
    assert result.exit_code == 0
    assert f"skipped: {hostile_tree / 'happiness'}/[bold]a\\x1b]0;pwned" in out
    assert "x[/y].jpg" in out and "a\\x1b]0;pwned\\x07b\\x1b[31m\\u202e.jpg" in out


def test_data_commands_show_hostile_names_as_written(hostile_tree, tmp_path):
    inspect = runner.invoke(app, ["data", "inspect", str(hostile_tree), "--layout", "folder"])
    assert inspect.exit_code == 0
    assert "[bold]a\\x1b]0;pwned" in _shown(inspect)  # the unreadable file, named
    prepare = runner.invoke(app, ["data", "prepare", str(hostile_tree), "--layout", "folder",
                                  "--detector", "haar", "--out", str(tmp_path / "p")])  # fmt: skip
    assert "[bold]a\\x1b]0;pwned" in _shown(prepare)


def test_errors_show_hostile_names_as_written(tmp_path, onnx_model):
    missing = tmp_path / f"{MARKUP}{ESCAPE}"
    for args in (["evaluate", str(missing), str(tmp_path)],
                 ["evaluate", str(onnx_model), str(missing)],
                 ["train", str(missing)],
                 ["predict", "--model", str(missing), str(tmp_path)],
                 ["data", "inspect", str(missing)]):  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "x[/y]a\\x1b]0;pwned" in _shown(result), (args, result.output)
