"""What preparing a dataset costs: `tinyfer data prepare` run from scratch (a fresh cache
folder, --force) in a child process; its wall time, peak RSS and the faces it kept.

python benchmarks/prepare_cost.py DATA [--layout L] [--name NAME] [-- extra prepare options]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data")
    parser.add_argument("--layout", default="auto")
    parser.add_argument("--name", help="results/<name>.json (default: prepare_<folder>)")
    parser.add_argument("extra", nargs="*", help="more `tinyfer data prepare` options")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        command = [sys.executable, "-m", "tinyfer", "data", "prepare", args.data, "--layout",
                   args.layout, "--out", cache, "--force", *args.extra]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        (manifest,) = Path(cache).glob("*.json")
        m = json.loads(manifest.read_text())
    figures = {
        "data": args.data,
        "prepare_command": " ".join(command[1:]).replace(cache, "<fresh folder>"),
        "wall_seconds": round(wall, 1),
        "peak_rss_mb": round(peak_mb, 1),
        "samples_read": m["samples_read"],
        "samples_kept": m["samples_kept"],
        "problem_counts": m.get("problem_counts", {}),
        "detector": m.get("detector"),
    }
    print(json.dumps(figures, indent=2))
    name = args.name or f"prepare_{Path(args.data).name}"
    print(write_result(name, figures))


if __name__ == "__main__":
    main()
