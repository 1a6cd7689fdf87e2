"""Faces in photos: detection recall and speed per detector, and a model's accuracy through the
whole pipeline on photos against the same faces as the dataset's crops.

python benchmarks/faces_in_photos.py [--model M] [--prior P] [--faces 600] [--threads 1]
    [--timing-only] [--accuracy-only]

Photos are made from dataset crops (FER2013 PrivateTest, CK+48): each crop enlarged so that the
face in it is 10-40% of a 720x576 canvas's shorter side, turned by up to 30 degrees in half the
cases, on noise, a gradient or blurred blobs (``tinyfer.core.synth.paste_face``, fixed seeds).
A face counts as found when the largest detection's centre lies inside the pasted crop. Accuracy:
``Recognizer.predict`` on the photos (largest face; a miss counts as wrong) against the model on
the dataset prepared as its training data was (``evaluate``'s path), on the same faces.
Times: the MUG frame at 896x896 and resized to 720x576, and a 720x576 frame without a face
(blurred noise: MTCNN then also searches the image turned both ways); ``--timing-only``
measures just these; ``--accuracy-only`` just the model's part (for comparing models).
``--prior`` is the class prior predictions assume (as ``tinyfer predict --prior``; default the
Recognizer's). ``--held-out-of RUN_DIR`` samples only the faces of that run's test split
(e.g. CK+'s held-out subjects for a model that trained on CK+); a dataset the run never saw
is sampled as usual.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from common import write_result

from tinyfer.core.faces import create_detector
from tinyfer.core.io import load_image
from tinyfer.core.labels import canonical_label
from tinyfer.core.priors import prior_name
from tinyfer.core.synth import paste_face
from tinyfer.evaluation.evaluate import load_eval_data
from tinyfer.inference.bench import median_ms
from tinyfer.inference.predict import Recognizer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CANVAS = (576, 720)  # (h, w)
DETECTORS = {  # name: (detector, kwargs)
    "mtcnn (default, min_face 0.1)": ("mtcnn", {"min_face": 0.1}),
    "mtcnn, min_face 0.2": ("mtcnn", {"min_face": 0.2}),
    "haar, min_face 0.2 (fast)": ("haar", {"min_face": 0.2, "scale_factor": 1.2}),
    "haar, min_face 0.1": ("haar", {"min_face": 0.1, "scale_factor": 1.1}),
}


def photos(files: list[Path], seed: int):
    """``(canvas, crop square in canvas pixels as 4 corners)`` per file."""
    rng = np.random.default_rng(seed)
    out = []
    for f in files:
        face = load_image(f, gray=True)
        canvas, m = paste_face(face, rng, CANVAS)
        h, w = face.shape
        corners = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], float) @ m.T
        out.append((canvas, corners.astype(np.float32)))
    return out


def found(detector, canvas: np.ndarray, corners: np.ndarray) -> bool:
    faces = detector.detect(canvas)
    if not faces:
        return False
    x, y, w, h = faces[0].box
    return cv2.pointPolygonTest(corners, (x + w / 2, y + h / 2), False) >= 0


def held_out(files: list[Path], run_dir: Path) -> list[Path]:
    """The files among ``files`` that lie in ``run_dir``'s test split; all of them when the run
    did not train on their dataset."""
    from tinyfer.core.config import TrainConfig
    from tinyfer.core.prepare import prepare
    from tinyfer.core.splits import split_of_run

    cfg = TrainConfig.from_yaml(run_dir / "config.yaml")
    name = files[0].relative_to(DATA).parts[0]
    seen = [p for p in cfg.data.paths if Path(p).name == name]
    if not seen:
        return files  # a dataset the run never trained on
    if Path(seen[0]).resolve() != (DATA / name).resolve():
        raise SystemExit(f"{run_dir} trained on {seen[0]}, which from here is not "
                         f"{DATA / name}: run this where the run was trained")  # fmt: skip
    data = prepare(cfg.data, cfg.prepared_dir, progress=False)
    parts = split_of_run(data, cfg)
    test = {str(Path(p).resolve()) for p in data.paths[parts["test"]]}
    return [f for f in files if str(f.resolve()) in test]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None, help="model for the accuracy part (bundled)")
    parser.add_argument("--prior", default=None, help="balanced, training or label=weight,...")
    parser.add_argument("--faces", type=int, default=600)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--name", default="faces_in_photos")
    parser.add_argument("--timing-only", action="store_true")
    parser.add_argument("--accuracy-only", action="store_true")
    parser.add_argument("--held-out-of", type=Path, help="sample only this run's test faces")
    args = parser.parse_args()
    if args.timing_only:
        args.faces = 0
    cv2.setNumThreads(args.threads)
    rng = random.Random(0)
    sets, sampled_from = {}, {}
    for name, pattern in (("FER2013 PrivateTest", "fer2013/test/*/PrivateTest_*.jpg"),
                          ("CK+48", "ckplus/*/*.png")):  # fmt: skip
        files = sorted(DATA.glob(pattern))
        every = len(files)
        if args.held_out_of:
            files = held_out(files, args.held_out_of)
        sampled_from[name] = ("all faces" if len(files) == every else
                              f"the {len(files)} faces of the run's test split")  # fmt: skip
        sets[name] = rng.sample(files, min(args.faces, len(files)))
    pasted = {name: photos(files, seed=i) for i, (name, files) in enumerate(sets.items())}
    mug = load_image(DATA / "mug_sample" / "img_0000.jpg")
    noise = np.random.default_rng(0).integers(0, 255, (*CANVAS, 3), np.uint8)
    timed = {"896x896 (MUG frame)": mug, "720x576 (MUG frame resized)": cv2.resize(mug, (720, 576)),
             "720x576 without a face": cv2.GaussianBlur(noise, (0, 0), 3)}  # fmt: skip

    detectors = []
    for label, (name, kwargs) in DETECTORS.items() if not args.accuracy_only else ():
        det = create_detector(name, **({**kwargs, "threads": args.threads} if name == "mtcnn"
                                       else kwargs))  # fmt: skip
        row = {"detector": label}
        for set_name, items in pasted.items() if not args.timing_only else ():
            row[f"recall {set_name}"] = round(
                float(np.mean([found(det, c, q) for c, q in items])), 4
            )
        row["MUG frame: faces"] = len(det.detect(mug))
        for t_name, image in timed.items():
            row[f"ms {t_name}"] = median_ms(lambda det=det, image=image: det.detect(image),
                                            args.repeats)  # fmt: skip
        if not args.timing_only:
            start = time.perf_counter()
            for c, _ in pasted["FER2013 PrivateTest"]:
                det.detect(c)
            row["ms per 720x576 photo (mean)"] = round(
                (time.perf_counter() - start) * 1000 / len(pasted["FER2013 PrivateTest"]), 2
            )
        print(row, flush=True)
        detectors.append(row)
    if args.timing_only:
        print(write_result(args.name, {"threads": args.threads, "detectors": detectors},
                           "onnxruntime", "opencv-python-headless"))  # fmt: skip
        return

    rec = Recognizer(args.model, threads=args.threads, prior=args.prior)
    accuracy = {}
    for set_name, files in sets.items():
        root = DATA / ("fer2013" if set_name.startswith("FER") else "ckplus")
        with tempfile.TemporaryDirectory() as tmp:
            # Only the sampled faces, in the dataset's layout: prepared as evaluate would.
            for f in files:
                (Path(tmp) / f.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, Path(tmp) / f.relative_to(root))
            prepared = load_eval_data(tmp, img_size=rec.img_size, progress=False,
                                      preprocessing=rec.cut.to_meta(),
                                      prepared_dir=Path(tmp) / "prepared")  # fmt: skip
            index = {str(Path(p).relative_to(tmp)): i for i, p in enumerate(prepared.paths)}
        rows = [index.get(str(f.relative_to(root))) for f in files]
        truth = [canonical_label(f.parent.name) for f in files]
        known = [t in rec.labels for t in truth]
        crops_ok, photo_ok, n = 0, 0, 0
        said: list[tuple[str, str]] = []  # (true, said on the photo; "" for a miss)
        probs = rec.predict_faces(prepared.X[[r for r in rows if r is not None]])
        by_row = dict(zip([r for r in rows if r is not None], probs))
        for (canvas, _), row, label, ok in zip(pasted[set_name], rows, truth, known):
            if not ok:
                continue  # a class the model does not know (CK+'s contempt)
            n += 1
            if row is not None:
                crops_ok += rec.labels[int(by_row[row].argmax())] == label
            faces = rec.predict(canvas)
            photo_ok += bool(faces) and faces[0].label == label
            said.append((label, faces[0].label if faces else ""))
        recall = {c: round(float(np.mean([s == c for t, s in said if t == c])), 4)
                  for c in rec.labels if any(t == c for t, _ in said)}  # fmt: skip
        accuracy[set_name] = {"faces": n, "sampled_from": sampled_from[set_name],
                              "crops": round(crops_ok / n, 4),
                              "photos": round(photo_ok / n, 4), "photo_recall": recall}  # fmt: skip
        print(set_name, accuracy[set_name], flush=True)
    figures = {
        "faces_per_set": {k: len(v) for k, v in sets.items()},
        "canvas": list(CANVAS),
        "threads": args.threads,
        "detectors": detectors,
        "model": str(args.model or "bundled"),
        "model_geometry": rec.cut.geometry,
        "prior": prior_name(rec.prior),
        "held_out_of": str(args.held_out_of) if args.held_out_of else None,
        "accuracy": accuracy,
    }
    print(write_result(args.name, figures, "onnxruntime", "opencv-python-headless"))


if __name__ == "__main__":
    main()
