"""The tables of detectors and dataset layouts, and everything derived from them."""

import inspect
import subprocess
import sys
import typing

import pytest

from tinyfer.core.kinds import DETECTORS, LAYOUTS


@pytest.mark.parametrize("name", list(DETECTORS))
def test_every_detector_entry_makes_its_detector_and_can_frame_a_box(name):
    from tinyfer.core.faces import BOX_FRAMING, create_detector

    detector = create_detector(name)
    assert detector.name == name and callable(detector.detect)
    # A face found without landmarks is cut by its detector's calibrated box framing.
    assert (name in BOX_FRAMING) == DETECTORS[name].finds_faces


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_every_layout_entry_names_exactly_the_options_its_reader_takes(name):
    reader = LAYOUTS[name].load()
    root, *options = inspect.signature(reader).parameters
    assert root == "root" and set(options) == set(LAYOUTS[name].options)


def test_config_and_command_choices_come_from_the_tables():
    from tinyfer.core.config import DataConfig

    hints = typing.get_type_hints(DataConfig)
    assert typing.get_args(hints["detector"]) == ("auto", *DETECTORS)
    assert typing.get_args(typing.get_args(hints["format"])[0]) == ("auto", *LAYOUTS)
    done = subprocess.run([sys.executable, "-m", "tinyfer", "predict", "x.jpg", "--detector",
                           "retinaface"], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2 and all(n in done.stderr for n in DETECTORS), done.stderr
