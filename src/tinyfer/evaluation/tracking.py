"""How well faces were tracked against known truth: identity switches, fragmentations,
misses and false faces, counted as the multiple-object-tracking literature does (MOTA)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

Box = Sequence[float]


@dataclass(frozen=True)
class TrackingScore:
    """``truth_faces``: visible faces of the truth over all frames; ``matched`` of them found
    (a predicted box whose centre is inside theirs); ``switches``: a person's track
    id changed from the one it had when last matched; ``fragmentations``: a person's
    track found, lost, and found again; ``shared``: frames where one id went to two faces."""

    frames: int
    truth_faces: int
    matched: int
    misses: int
    false_faces: int
    switches: int
    fragmentations: int
    shared: int

    @property
    def switches_per_100(self) -> float:
        return 100 * self.switches / self.matched if self.matched else 0.0

    @property
    def mota(self) -> float:
        errors = self.misses + self.false_faces + self.switches
        return 1 - errors / self.truth_faces if self.truth_faces else 0.0

    def to_dict(self) -> dict:
        return asdict(self) | {
            "switches_per_100_track_frames": round(self.switches_per_100, 3),
            "mota": round(self.mota, 4),
        }


def _centre(box: Box) -> tuple[float, float]:
    return box[0] + box[2] / 2, box[1] + box[3] / 2


def _inside(point: tuple[float, float], box: Box) -> bool:
    return box[0] <= point[0] <= box[0] + box[2] and box[1] <= point[1] <= box[1] + box[3]


def score_tracking(
    truth: Sequence[Sequence[tuple[int, Box, bool]]],
    predicted: Sequence[Sequence[tuple[int | None, Box]]],
) -> TrackingScore:
    """Score the ``predicted`` ``(track, box)`` of each frame against ``truth``'s
    ``(person, box, visible)``, where a truth box may be larger than the face a detector
    finds in it (a pasted crop): a prediction matches a person when its centre is inside the
    person's box, nearest centres first, one to one. A face hidden in the truth may be found
    or not (neither is an error); a predicted face matching nothing is a false face."""
    last: dict[int, int | None] = {}  # person -> its track when last matched
    lost: dict[int, bool] = {}  # person -> found before and missed since
    matched = misses = false_faces = switches = fragments = shared = 0
    visible_total = 0
    for people, faces in zip(truth, predicted, strict=True):
        ids = [t for t, _ in faces if t is not None]
        shared += len(ids) != len(set(ids))
        pairs = sorted(
            (math.dist(_centre(box), _centre(f_box)), i, j)
            for i, (_, box, _) in enumerate(people)
            for j, (_, f_box) in enumerate(faces)
            if _inside(_centre(f_box), box)
        )
        person_of: dict[int, int] = {}
        used: set[int] = set()
        for _, i, j in pairs:
            if i in person_of or j in used:
                continue
            person_of[i] = j
            used.add(j)
        false_faces += len(faces) - len(used)
        for i, (person, _, visible) in enumerate(people):
            visible_total += bool(visible)
            if i not in person_of:
                misses += visible
                lost[person] = lost.get(person, False) or person in last
                continue
            matched += visible
            track = faces[person_of[i]][0]
            if person in last and last[person] != track:
                switches += 1
            if lost.get(person):
                fragments += 1
                lost[person] = False
            last[person] = track
    return TrackingScore(len(truth), int(visible_total), matched, misses, false_faces, switches,
                         fragments, shared)  # fmt: skip
