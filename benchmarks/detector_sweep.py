"""The Haar detector's speed/recall trade-off: median time on the MUG frame (896x896) and the
share of images where a face is found, for each setting of min_face and scale_factor.

python benchmarks/detector_sweep.py [--threads 1] [--repeats 50] [--crops 150]
"""

from __future__ import annotations

import argparse
import itertools
import random
from pathlib import Path

import cv2
from common import write_result

from tinyfer.core.faces import HaarDetector
from tinyfer.core.io import load_image
from tinyfer.inference.bench import demo_frame, median_ms

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def image_sets(n_crops: int) -> dict[str, list]:
    rng = random.Random(0)
    sets = {"drawn 896 px faces": [load_image(demo_frame(seed=s), gray=True) for s in range(8)]}
    mug = DATA / "mug_sample" / "img_0000.jpg"
    if mug.is_file():
        sets["MUG frame"] = [load_image(mug, gray=True)]
    for name, pattern in (("CK+48 crops", "ckplus/*/*.png"), ("FER2013 test crops",
                                                              "fer2013/test/*/*.jpg")):  # fmt: skip
        files = sorted(DATA.glob(pattern))
        if files:
            picked = rng.sample(files, min(n_crops, len(files)))
            sets[name] = [load_image(f, gray=True) for f in picked]
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--crops", type=int, default=150)
    parser.add_argument("--min-face", type=float, nargs="*", default=[0.1, 0.15, 0.2, 0.25])
    parser.add_argument("--scale-factor", type=float, nargs="*", default=[1.1, 1.15, 1.2])
    parser.add_argument("--name", default="detector_sweep")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    sets = image_sets(args.crops)
    timed = sets.get("MUG frame", sets["drawn 896 px faces"])[0]
    rows = []
    for min_face, sf in itertools.product(args.min_face, args.scale_factor):
        det = HaarDetector(min_face=min_face, scale_factor=sf)
        found = {name: sum(bool(det.detect(g)) for g in imgs) / len(imgs)
                 for name, imgs in sets.items()}  # fmt: skip
        ms = median_ms(lambda det=det: det.detect(timed), args.repeats)
        rows.append({"min_face": min_face, "scale_factor": sf, "detect_ms": ms, "found": found})
        print(f"min_face {min_face:.2f} scale {sf:.2f}: {ms:6.2f} ms  " +
              "  ".join(f"{k} {v:.0%}" for k, v in found.items()))  # fmt: skip
    sizes = {name: len(imgs) for name, imgs in sets.items()}
    figures = {"threads": args.threads, "timed_on": list(timed.shape), "images": sizes,
               "rows": rows}  # fmt: skip
    print(write_result(args.name, figures, "opencv-python-headless"))


if __name__ == "__main__":
    main()
