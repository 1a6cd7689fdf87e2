"""One small grid run three ways, one after another on this machine: here (one training at a
time, all cores), ``--jobs 2`` (two local processes, one thread each) and Ray on a local
2-CPU instance; wall time of each, and whether their per-fold predictions are identical.

python benchmarks/executors.py CONFIG --out DIR [--set key=value ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import write_result

RUNS = {  # name -> the experiment command's extra arguments
    "here": [],
    "jobs2": ["--jobs", "2"],
    "ray2": ["--executor", "ray", "--jobs", "2"],
}


def predictions(exp: Path) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for path in sorted((exp / "runs").rglob("predictions.npz")):
        with np.load(path) as f:
            out[str(path.relative_to(exp))] = {k: f[k] for k in f.files}
    return out


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].keys() == b[k].keys() and all(np.array_equal(a[k][x], b[k][x]) for x in a[k])
        for k in a
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--name", default="executors_grid")
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    args = parser.parse_args()
    sets = [x for s in args.sets for x in ("--set", s)]
    figures: dict = {"config": str(args.config), "set": args.sets, "runs": {}}
    found = {}
    for name in args.runs:
        extra = RUNS[name]
        exp = args.out / name
        command = [sys.executable, "-m", "tinyfer", "experiment", str(args.config), *sets,
                   "--out", str(exp), *extra]  # fmt: skip
        print(" ".join(command), flush=True)
        start = time.perf_counter()
        subprocess.run(command, check=True)
        wall = time.perf_counter() - start
        found[name] = predictions(exp)
        figures["runs"][name] = {"args": extra, "wall_seconds": round(wall, 1),
                                 "trainings": len(found[name])}  # fmt: skip
        print(f"{name}: {wall:.1f} s for {len(found[name])} trainings", flush=True)
    for name in args.runs:
        if "here" in found:
            here = figures["runs"]["here"]["wall_seconds"]
            figures["runs"][name]["speed_up_vs_here"] = round(
                here / figures["runs"][name]["wall_seconds"], 2
            )
    # "here" trains with the default threads, the others with 1 each (experiment.resources)
    pairs = [("jobs2", "ray2"), ("here", "jobs2"), ("here", "ray2")]
    figures["identical_predictions"] = {
        f"{a}_vs_{b}": same(found[a], found[b]) for a, b in pairs if a in found and b in found
    }
    print(write_result(args.name, figures, "torch", "ray"))


if __name__ == "__main__":
    main()
