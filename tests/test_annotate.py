"""Where a face's label and probability panel are drawn: inside the image, never on each other."""

import pytest

from tinyfer.inference.annotate import layout


def _inside(rect, shape):
    x, y, w, h = rect
    return x >= 0 and y >= 0 and x + w <= shape[1] and y + h <= shape[0]


def _apart(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay


@pytest.mark.parametrize(
    ("shape", "box"),
    [
        ((360, 360), (0, 0, 360, 360)),  # a face crop taken whole, enlarged
        ((360, 360), (20, 2, 320, 330)),  # a face touching the top edge
        ((480, 640), (500, 100, 120, 150)),  # no room on the right: panel on the left
        ((480, 640), (100, 100, 120, 150)),  # room on the right
        ((480, 640), (250, 0, 140, 470)),  # neither side has room
    ],
)
def test_label_and_panel_stay_in_the_image_and_apart(shape, box):
    title, panel = layout(shape, box, (120, 18), 1.0, 7)
    assert _inside(title, shape) and _inside(panel, shape)
    assert _apart(title, panel), (title, panel)


def test_the_label_sits_above_the_face_when_there_is_room():
    (tx, ty, _, th), (px, py, _, _) = layout((480, 640), (100, 100, 120, 150), (120, 18), 1, 7)
    assert ty + th <= 100 and tx == 100
    assert px >= 100 + 120 and py == 100  # the panel right of the face, level with it
