"""Inference speed: per face (batch 1), batch throughput, face detection and the whole frame,
with onnxruntime for each given ONNX model and with torch for a given checkpoint.

python benchmarks/speed.py [--models fp32.onnx int8.onnx] [--torch-model RUN_DIR]
    [--image ../shared/data/mug_sample/img_0000.jpg] [--threads 1] [--repeats 300] [--rounds 1]

With ``--rounds N`` the models are measured in turn N times (each a median of ``--repeats``)
and each figure is the median over the rounds, its range beside it: on a shared machine the
speed drifts by more than the difference between two files measured minutes apart.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import write_result

from tinyfer.inference.bench import measure_speed, median_ms

REPO = Path(__file__).resolve().parents[1]


def torch_speed(run: Path, threads: int, repeats: int, batch: int) -> dict:
    import torch

    from tinyfer.core.model_files import resolve_model_file
    from tinyfer.training.checkpoint import load_model

    torch.set_num_threads(threads)
    model, meta = load_model(resolve_model_file(run))
    one = np.random.default_rng(0).integers(0, 255, (1, meta.img_size, meta.img_size), np.uint8)
    many = np.repeat(one, batch, axis=0)
    batch_ms = median_ms(lambda: model.predict_proba(many), max(5, repeats // 5))
    return {
        "model": str(run),
        "classify_ms": median_ms(lambda: model.predict_proba(one), repeats),
        "batch_faces_per_s": batch / batch_ms * 1000,
    }


TIMES = ("classify_ms", "batch_faces_per_s", "detect_ms", "end_to_end_ms")


def _over_rounds(rows: list[dict]) -> dict:
    """One model's rounds: each time the median over them, with ``<time>_range`` (min, max)."""
    out = dict(rows[0])
    for key in TIMES:
        values = [r[key] for r in rows]
        out[key] = float(np.median(values))
        out[f"{key}_range"] = [min(values), max(values)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--models", nargs="*", default=[None], help="ONNX files (default: bundled)."
    )
    parser.add_argument("--torch-model", type=Path, help="A run directory or model.pt.")
    parser.add_argument("--image", type=Path, help="Default: the MUG frame, else a drawn face.")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--name", default="speed")
    args = parser.parse_args()
    image = args.image
    if image is None:
        mug = REPO.parent / "shared" / "data" / "mug_sample" / "img_0000.jpg"
        image = mug if mug.is_file() else None
    rounds = [
        [measure_speed(m, image, threads=args.threads, repeats=args.repeats,
                       batch=args.batch).to_dict() for m in args.models]
        for _ in range(args.rounds)
    ]  # fmt: skip
    rows = [_over_rounds([r[i] for r in rounds]) for i in range(len(args.models))]
    figures = {"threads": args.threads, "rounds": args.rounds, "onnxruntime": rows}
    if args.torch_model:
        figures["torch"] = torch_speed(args.torch_model, args.threads, args.repeats, args.batch)
    for row in rows:
        print(f"{row['model']}: {row['classify_ms']:.3f} ms/face, "
              f"{row['batch_faces_per_s']:,.0f} faces/s at batch {row['batch']}, detect "
              f"{row['detect_ms']:.2f} ms, frame {row['end_to_end_ms']:.2f} ms")  # fmt: skip
    print(write_result(args.name, figures, "onnxruntime", "opencv-python-headless", "torch"))


if __name__ == "__main__":
    main()
