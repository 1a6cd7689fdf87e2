"""What every benchmark result records: machine, versions, command, date."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

# Tests point this elsewhere so that checking a script never writes into the repository.
RESULTS = Path(os.environ.get("TINYFER_BENCH_RESULTS", Path(__file__).parent / "results"))


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def versions(*packages: str) -> dict:
    out = {}
    for name in ("tinyfer", *packages):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_result(name: str, figures: dict, *packages: str) -> Path:
    """Write ``results/<name>.json`` with the figures and their context."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "name": name,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "versions": versions(*packages),
        **figures,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def record_main(doc: str, summarize, *packages: str) -> None:
    """The command line of a script that records a finished run: ``DIR NAME [--wall-seconds]``."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("dir", type=Path)
    parser.add_argument("name")
    parser.add_argument("--wall-seconds", type=float, help="Wall time of the whole command.")
    args = parser.parse_args()
    figures = summarize(args.dir)
    if args.wall_seconds:
        figures["wall_seconds"] = args.wall_seconds
    print(write_result(args.name, figures, *packages))
