import pytest

from tinyfer.core.labels import ALL_LABELS, EMOTIONS, canonical_label, ordered_labels
from tinyfer.errors import UnknownLabelError


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("angry", "anger"), ("AN", "anger"), ("Happy", "happiness"), ("HA", "happiness"),
        ("sad", "sadness"), ("surprised", "surprise"), ("NE", "neutral"), ("fear", "fear"),
        ("DI", "disgust"), ("contempt", "contempt"), (" Sadness ", "sadness"),
    ],
)  # fmt: skip
def test_aliases_map_to_canonical_names(name, expected):
    assert canonical_label(name) == expected


def test_unknown_label_is_named_in_the_error():
    with pytest.raises(UnknownLabelError, match="'bored'.*in /x"):
        canonical_label("bored", source="/x")


def test_fer2013_id_order_and_contempt_last():
    assert EMOTIONS[:3] == ("anger", "disgust", "fear") and EMOTIONS[6] == "neutral"
    assert ordered_labels(["neutral", "contempt", "anger"]) == ("anger", "neutral", "contempt")
    assert ALL_LABELS[-1] == "contempt"
