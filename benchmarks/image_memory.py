"""Peak memory of `tinyfer predict` on one image of the worst shapes we can make.

Each image is written to a temporary folder and predicted alone in a fresh process
(`tinyfer predict IMAGE --format json --threads 1`); the process's peak resident memory is its
`ru_maxrss` as the parent sees it. Shapes: a 1 x 50M PNG and its transpose (elongated, under
the pixel limit), 20000 x 20000 JPEG and PNG headers (over it), the largest square under the
limit as a noisy JPEG and PNG, the widest strip still allowed (20:1 at the limit), and a
photo-sized frame for reference. The target: at most 1 GB for any of them.

python benchmarks/image_memory.py [--model accurate] [--name image_memory] [--pixels N]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import write_result
from PIL import Image

from tinyfer.core.io import MAX_ASPECT, MAX_PIXELS

LIMIT_MB = 1024


def jpeg_header(path: Path, width: int, height: int) -> None:
    """A JPEG whose frame header claims ``width`` x ``height``."""
    buf = io.BytesIO()
    Image.new("L", (16, 16), 128).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    path.write_bytes(bytes(data))


def png_header(path: Path, width: int, height: int) -> None:
    """A PNG whose IHDR claims ``width`` x ``height`` (its data is a small image's)."""
    import zlib

    buf = io.BytesIO()
    Image.new("L", (16, 16), 128).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    start = data.index(b"IHDR")
    data[start + 4 : start + 12] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    crc = zlib.crc32(bytes(data[start : start + 17]))
    data[start + 17 : start + 21] = crc.to_bytes(4, "big")
    path.write_bytes(bytes(data))


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def make_images(folder: Path, pixels: int = MAX_PIXELS) -> dict[str, Path]:
    side = int(pixels**0.5)
    strip_h = int((pixels / MAX_ASPECT) ** 0.5)
    out = {
        "1x50M PNG": folder / "strip.png",
        "50Mx1 PNG": folder / "column.png",
        "20000x20000 JPEG header": folder / "huge.jpg",
        "20000x20000 PNG header": folder / "huge.png",
        f"{side}x{side} noise JPEG": folder / "square.jpg",
        f"{side}x{side} noise PNG": folder / "square.png",
        f"{strip_h * MAX_ASPECT}x{strip_h} noise JPEG (20:1)": folder / "wide.jpg",
        "1920x1080 noise JPEG": folder / "frame.jpg",
    }
    Image.new("L", (MAX_PIXELS, 1), 90).save(out["1x50M PNG"], compress_level=9)
    Image.new("L", (1, MAX_PIXELS), 90).save(out["50Mx1 PNG"], compress_level=9)
    jpeg_header(out["20000x20000 JPEG header"], 20000, 20000)
    png_header(out["20000x20000 PNG header"], 20000, 20000)
    big = noise(side, side)
    big.save(out[f"{side}x{side} noise JPEG"], quality=90)
    big.save(out[f"{side}x{side} noise PNG"], compress_level=1)
    del big
    noise(strip_h * MAX_ASPECT, strip_h, 1).save(out[next(k for k in out if "20:1" in k)])
    noise(1920, 1080, 2).save(out["1920x1080 noise JPEG"], quality=90)
    return out


def peak_of(cmd: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """(peak RSS MB, seconds, result) of ``cmd`` run alone in a child process."""
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: nothing else of this process's memory counts
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        err = os.open(os.environ.get("IMAGE_MEMORY_ERR", os.devnull), os.O_WRONLY | os.O_CREAT)
        os.dup2(err, 2)
        os.execv(cmd[0], cmd)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    return usage.ru_maxrss / 1024, seconds, os.waitstatus_to_exitcode(status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="accurate")
    parser.add_argument("--name", default="image_memory")
    parser.add_argument("--pixels", type=int, default=MAX_PIXELS,
                        help="size of the noise images (default: the limit)")  # fmt: skip
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        images = make_images(Path(tmp), args.pixels)
        for shape, path in images.items():
            errors = Path(tmp) / f"{path.name}.err"
            os.environ["IMAGE_MEMORY_ERR"] = str(errors)
            cmd = [sys.executable, "-m", "tinyfer", "predict", str(path), "--model", args.model,
                   "--format", "json", "--threads", "1"]  # fmt: skip
            peak, seconds, code = peak_of(cmd)
            said = errors.read_text().strip().splitlines() if errors.is_file() else []
            row = {"image": shape, "file_bytes": path.stat().st_size, "peak_rss_mb": round(peak, 1),
                   "seconds": round(seconds, 2), "exit_status": code,
                   "stderr_first_line": said[0] if said else ""}  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
    worst = max(r["peak_rss_mb"] for r in rows)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write_result(args.name, {"model": args.model, "limit_mb": LIMIT_MB, "images": rows,
                             "worst_peak_rss_mb": worst, "within_limit": worst <= LIMIT_MB,
                             "this_script_peak_rss_mb": round(baseline, 1)},
                 "pillow", "opencv-python-headless", "onnxruntime")  # fmt: skip


if __name__ == "__main__":
    main()
