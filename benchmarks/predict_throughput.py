"""Batch prediction throughput: the same files predicted here (one recognizer, one thread)
and by 1 and 2 Ray workers on a local Ray instance (a recognizer and a thread each). Wall
time includes Ray's start; "steady" images/s is counted from the first record to the last.

python benchmarks/predict_throughput.py FOLDER [--workers 1 2] [--model accurate]
    [--detector mtcnn]
"""

from __future__ import annotations

import argparse
import functools
import io
import time

from common import write_result

from tinyfer.inference.batch import RayOptions, run_predictions
from tinyfer.inference.predict import Recognizer


class _Clock(io.StringIO):
    """A stream that notes when each record arrives."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def write(self, text: str) -> int:
        self.times.append(time.perf_counter())
        return super().write(text)


def measure(rec: Recognizer, folder: str, ray: RayOptions | None) -> dict:
    out = _Clock()
    start = time.perf_counter()
    summary = run_predictions(rec, [folder], out, fmt="csv", ray=ray)
    wall = time.perf_counter() - start
    records = out.times[1:]  # the first write is the header
    steady = (len(records) - 1) / (records[-1] - records[0]) if len(records) > 1 else None
    return {
        "images": summary.images,
        "faces": summary.faces,
        "failed": len(summary.failed),
        "wall_seconds": round(wall, 2),
        "images_per_s_wall": round(summary.images / wall, 1),
        "images_per_s_steady": round(steady, 1) if steady else None,
        "seconds_to_first_record": round(records[0] - start, 2) if records else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--model", default="accurate")
    parser.add_argument("--detector", default="mtcnn")
    parser.add_argument("--name", default="predict_throughput")
    args = parser.parse_args()
    make = functools.partial(Recognizer, args.model, detector=args.detector, threads=1)
    rec = make()
    figures = {"folder": args.folder, "model": args.model, "detector": args.detector,
               "runs": {"here": measure(rec, args.folder, None)}}  # fmt: skip
    print("here:", figures["runs"]["here"], flush=True)
    for n in args.workers:
        figures["runs"][f"ray{n}"] = result = measure(rec, args.folder, RayOptions(make, n))
        print(f"ray, {n} worker(s):", result, flush=True)
    print(write_result(args.name, figures, "onnxruntime", "ray"))


if __name__ == "__main__":
    main()
