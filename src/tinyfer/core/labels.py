"""One label vocabulary for every dataset, and the names each dataset uses for it."""

from __future__ import annotations

from collections.abc import Iterable

from tinyfer.errors import UnknownLabelError

#: The seven basic emotional states, in the order FER2013's label ids use (0..6).
EMOTIONS: tuple[str, ...] = (
    "anger",
    "disgust",
    "fear",
    "happiness",
    "sadness",
    "surprise",
    "neutral",
)
#: Canonical names in canonical order; contempt exists in CK+ only.
ALL_LABELS: tuple[str, ...] = (*EMOTIONS, "contempt")

ALIASES: dict[str, str] = {
    **{name: name for name in ALL_LABELS},
    "angry": "anger",
    "an": "anger",
    "ang": "anger",
    "disgusted": "disgust",
    "di": "disgust",
    "dis": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "fe": "fear",
    "happy": "happiness",
    "joy": "happiness",
    "ha": "happiness",
    "hap": "happiness",
    "sad": "sadness",
    "sa": "sadness",
    "surprised": "surprise",
    "su": "surprise",
    "sur": "surprise",
    "neu": "neutral",
    "ne": "neutral",
    "calm": "neutral",
    "co": "contempt",
    "contemptuous": "contempt",
}


def canonical_label(name: str, *, source: str = "") -> str:
    """Map a dataset's label name (``angry``, ``HA``, ``Happy``...) to its canonical name."""
    key = name.strip().lower()
    if key not in ALIASES:
        where = f" in {source}" if source else ""
        raise UnknownLabelError(
            f"unknown label {name!r}{where}; known names: {', '.join(sorted(ALIASES))}. "
            "Rename the folder, or leave such folders out: --skip-unknown (data inspect, data "
            "prepare, evaluate), --set data.skip_unknown=true (train, experiment) or "
            "skip_unknown=True (Python)."
        )
    return ALIASES[key]


def is_known_label(name: str) -> bool:
    return name.strip().lower() in ALIASES


def ordered_labels(labels: Iterable[str]) -> tuple[str, ...]:
    """The distinct canonical labels present, in canonical order (this fixes class indices)."""
    present = set(labels)
    return tuple(name for name in ALL_LABELS if name in present)
