import numpy as np
import pytest

from tinyfer.core.inputs import model_input
from tinyfer.errors import TinyferError


def test_faces_become_one_channel_floats_in_0_1():
    faces = np.array([[[0, 255], [51, 102]]], np.uint8)
    x = model_input(faces, 2)
    assert x.shape == (1, 1, 2, 2) and x.dtype == np.float32
    assert x[0, 0].ravel().tolist() == pytest.approx([0.0, 1.0, 0.2, 0.4])


@pytest.mark.parametrize(
    ("faces", "message"),
    [
        (np.zeros((2, 48, 48, 3), np.uint8), r"\(N, 48, 48\) gray crops; got \(2, 48, 48, 3\)"),
        (np.zeros((2, 64, 64), np.uint8), r"got \(2, 64, 64\)"),
        (np.zeros((2, 48, 48), np.float32), "must be uint8"),
    ],
)
def test_anything_else_is_refused_with_what_it_is(faces, message):
    with pytest.raises(TinyferError, match=message):
        model_input(faces, 48)
