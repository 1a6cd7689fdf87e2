"""Peak memory of `tinyfer predict` on a long video, and whether it grows with the length.

Writes a 640x480 video of drawn faces (--minutes long, 30 fps), runs `tinyfer predict` on it
(JSON to /dev/null) and samples the process's resident memory twice a second.

python benchmarks/video_memory.py [--minutes 10] [--every 1] [--model M] [--name video_memory]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import write_result


def write_video(path: Path, minutes: float, fps: int = 30) -> int:
    import cv2

    from tinyfer.inference.bench import demo_frame

    # A few distinct frames, cycled: decoding and detection work as on real footage.
    frames = []
    for seed in range(8):
        face = demo_frame(size=400, seed=seed)
        frame = np.full((480, 640, 3), 60, np.uint8)
        frame[40:440, 120:520] = face
        frames.append(frame)
    n = max(1, round(minutes * 60 * fps))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    for i in range(n):
        writer.write(frames[(i // fps) % len(frames)])
    writer.release()
    return n


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--model", default=None)
    parser.add_argument("--name", default="video_memory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "long.mp4"
        frames = write_video(video, args.minutes)
        cmd = [sys.executable, "-m", "tinyfer", "predict", str(video), "--format", "json",
               "--every", str(args.every), "--threads", "1"]  # fmt: skip
        if args.model:
            cmd += ["--model", args.model]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        samples = []  # (seconds, MB)
        while proc.poll() is None:
            try:
                samples.append((time.perf_counter() - start, rss_mb(proc.pid)))
            except (FileNotFoundError, ProcessLookupError):
                break
            time.sleep(0.5)
        err = proc.communicate()[1]
        if proc.returncode != 0:
            sys.exit(f"tinyfer predict failed:\n{err}")
    seconds = time.perf_counter() - start
    mb = np.array([m for _, m in samples if m > 0]) if samples else np.zeros(1)
    tenth = max(1, len(mb) // 10)
    figures = {
        "video": {"minutes": args.minutes, "frames": frames, "size": "640x480", "fps": 30},
        "every": args.every,
        "predict_command": " ".join(cmd[1:]),
        "seconds": round(seconds, 1),
        "frames_per_s": round(frames / args.every / seconds, 1),
        "peak_rss_mb": round(float(mb.max()), 1),
        # The second tenth, not the first: that one holds the interpreter starting up.
        "rss_mb_second_tenth": round(float(np.median(mb[tenth : 2 * tenth])), 1),
        "rss_mb_last_tenth": round(float(np.median(mb[-tenth:])), 1),
        "samples": len(mb),
        "summary": err.strip().splitlines()[-1] if err.strip() else "",
    }
    print(write_result(args.name, figures, "onnxruntime", "opencv-python-headless"))


if __name__ == "__main__":
    main()
