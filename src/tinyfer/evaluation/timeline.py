"""A video's tracks to look at: the timeline (one row per track, its emotions over time as
stacked areas under a band of the leading emotion) and a self-contained HTML report with the
timeline, a thumbnail per track and the summary table."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from tinyfer.evaluation.figures import plt_module
from tinyfer.evaluation.report import Block, pct, to_html
from tinyfer.inference.annotate import COLOURS
from tinyfer.inference.batch import Record
from tinyfer.inference.track import TrackedVideo

#: At most this many tracks are drawn (the longest); the title says how many were left out.
MAX_ROWS = 24


class Timeline:
    """Each track's probabilities over time (smoothed where they were), gathered from the
    records of a run as they are written (:meth:`add`)."""

    def __init__(self, labels: Sequence[str]):
        self.labels = list(labels)
        # video -> track -> [(time, probabilities in label order)]
        self.series: dict[str, dict[int, list[tuple[float, list[float]]]]] = {}

    def add(self, record: Record) -> None:
        if record.frame is None:
            return
        for face in record.faces:
            if face.track is not None:
                probs = face.smoothed or face.probabilities
                rows = self.series.setdefault(record.file, {}).setdefault(face.track, [])
                rows.append((float(record.time or 0.0), [probs[n] for n in self.labels]))


def _rgb(label: str) -> tuple[float, float, float]:
    b, g, r = COLOURS.get(label, (160, 160, 160))
    return r / 255, g / 255, b / 255


def _segments(times: np.ndarray) -> list[slice]:
    """Runs of frames without a gap of more than three frame intervals (a track lost for a
    while is drawn with a hole, not interpolated across)."""
    if len(times) < 2:
        return [slice(0, len(times))]
    step = float(np.median(np.diff(times))) or 1.0
    cuts = np.flatnonzero(np.diff(times) > 3 * step) + 1
    edges = [0, *cuts.tolist(), len(times)]
    return [slice(a, b) for a, b in itertools.pairwise(edges)]


def plot_timeline(timeline: Timeline, path: str | Path) -> Path:
    """The timeline figure: a row per track (the :data:`MAX_ROWS` longest), time in seconds."""
    plt = plt_module()
    rows = [(video, track, series) for video, tracks in timeline.series.items()
            for track, series in tracks.items()]  # fmt: skip
    left_out = max(len(rows) - MAX_ROWS, 0)
    rows = sorted(rows, key=lambda r: -len(r[2]))[:MAX_ROWS]
    rows.sort(key=lambda r: (r[0], r[1]))
    several = len(timeline.series) > 1
    height = 1.0 + 1.1 * max(len(rows), 1)
    fig, axes = plt.subplots(max(len(rows), 1), 1, figsize=(11, height), squeeze=False,
                             sharex=True)  # fmt: skip
    colours = [_rgb(n) for n in timeline.labels]
    end = max((s[-1][0] for _, _, s in rows), default=1.0) or 1.0
    for ax, (video, track, series) in zip(axes[:, 0], rows):
        times = np.array([t for t, _ in series])
        probs = np.array([p for _, p in series])
        for part in _segments(times):
            t, p = times[part], probs[part]
            ax.stackplot(t, p.T, colors=colours, linewidth=0)
            lead = p.argmax(1)
            starts = [0, *(np.flatnonzero(np.diff(lead)) + 1).tolist()]
            stops = [*starts[1:], len(t) - 1]
            for a, b in zip(starts, stops):  # the band of the leading emotion, run by run
                ax.axvspan(t[a], t[b], ymin=1.0, ymax=1.12, color=colours[lead[a]],
                           clip_on=False, linewidth=0)  # fmt: skip
        name = f"{Path(video).name}: #{track}" if several else f"track {track}"
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
        ax.set_xlim(0, end)
        ax.set_ylim(0, 1)
        ax.set_yticks([])
    if not rows:
        axes[0, 0].text(0.5, 0.5, "no face was tracked", ha="center", va="center")
        axes[0, 0].set_axis_off()
    axes[-1, 0].set_xlabel("time (s)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours]
    fig.legend(handles, timeline.labels, loc="upper center", ncol=len(colours), fontsize=9,
               frameon=False, bbox_to_anchor=(0.5, 1 - 0.3 / height))  # fmt: skip
    title = "Emotions per tracked face" + (f" ({left_out} shorter tracks left out)" if left_out
                                           else "")  # fmt: skip
    fig.suptitle(title, y=1.0 - 0.05 / height, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.75 / height))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def _contact_sheet(found: TrackedVideo, path: Path) -> Path | None:
    """The tracks' thumbnails side by side, each under its id."""
    tiles = []
    for track in sorted(found.thumbnails):
        thumb = found.thumbnails[track]
        tile = cv2.copyMakeBorder(thumb, 22, 4, 4, 4, cv2.BORDER_CONSTANT, value=(255, 255, 255))
        cv2.putText(tile, f"#{track}", (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1,
                    cv2.LINE_AA)  # fmt: skip
        tiles.append(tile)
    if not tiles:
        return None
    per_row = 10
    rows = [tiles[i : i + per_row] for i in range(0, len(tiles), per_row)]
    strips = [np.hstack(row) for row in rows]
    width = max(strip.shape[1] for strip in strips)
    white = (255, 255, 255)
    lines = [cv2.copyMakeBorder(strip, 0, 0, 0, width - strip.shape[1], cv2.BORDER_CONSTANT,
                                value=white) for strip in strips]  # fmt: skip
    cv2.imwrite(str(path), np.vstack(lines))
    return path


def video_report_blocks(timeline: Timeline, videos: dict[str, TrackedVideo], figure: Path,
                        folder: Path, command: str) -> list[Block]:  # fmt: skip
    """The report's blocks: the command, the timeline, then per video its faces and table."""
    caption = ("Each track's emotions over time (smoothed where they were); the band above "
               "each row is the leading one.")  # fmt: skip
    blocks: list[Block] = [("h1", "tinyfer: faces tracked in video"), ("pre", command),
                           ("img", str(figure), caption)]  # fmt: skip
    for n, (video, found) in enumerate(videos.items()):
        blocks.append(("h2", video))
        if not found.tracks:
            blocks.append(("p", "No face was found in this video: nothing to track."))
            continue
        sheet = _contact_sheet(found, folder / f"faces{n}.png")
        if sheet is not None:
            blocks.append(("img", str(sheet), "Each track's surest face."))
        header = ["track", "first (s)", "last (s)", "on screen (s)", "dominant", "valence",
                  *(f"{label} %" for label in timeline.labels)]  # fmt: skip
        rows = [[t["track"], t["first_seen"], t["last_seen"], t["seconds_on_screen"],
                 t["dominant"], t["valence"],
                 *(pct(t["share_of_time"][label]) for label in timeline.labels)]
                for t in found.tracks]  # fmt: skip
        blocks.append(("table", header, rows))
    blocks.append(("p", "Share of time: of the track's frames, the share where each emotion "
                        "led (smoothed label). Valence: P(happiness) minus P(anger, disgust, "
                        "fear, sadness, contempt), averaged over the track; a stated "
                        "convention, not a measured valence."))  # fmt: skip
    return blocks


def write_video_report(path: str | Path, timeline: Timeline, videos: dict[str, TrackedVideo],
                       command: str) -> Path:  # fmt: skip
    """A self-contained HTML report (figures embedded) of the tracked videos."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        figure = plot_timeline(timeline, folder / "timeline.png")
        page = to_html(video_report_blocks(timeline, videos, figure, folder, command))
    Path(path).write_text(page)
    return Path(path)
