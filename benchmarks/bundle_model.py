"""Make a bundled model from a finished run: export it into the package under its name,
measure the exported file (each evaluation set under both priors, per face on one thread,
int8 against fp32), and write results/bundled_<name>.json and the package's card <name>.md
from those measurements only; the run's model.pt ships beside it as <name>.pt (for fine-tuning:
``classify.pretrained: <name>``).

python benchmarks/bundle_model.py RUN_DIR --name accurate|fast [--tta] [--int8]
    [--eval ../shared/data/ferplus:PrivateTest --eval ../shared/data/fer2013:PrivateTest]
    [--photos results/faces_in_photos_X.json ...] [--wall-seconds S] [--conditions TEXT]

The first --eval set also gives the faces that check ONNX against torch (its test split) and
calibrate int8 (its Training split, never test faces).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import yaml
from common import RESULTS, write_result

from tinyfer.core.model_files import BUNDLED_MODELS
from tinyfer.evaluation.evaluate import copies_in, evaluate, load_eval_data, select_split
from tinyfer.inference.bench import measure_speed
from tinyfer.training.checkpoint import load_model
from tinyfer.training.export import export_onnx
from tinyfer.training.models import count_parameters

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
PRIORS = ("balanced", "training")  # the default first: its figures lead the card
DEFAULT_EVALS = [f"{DATA / 'ferplus'}:PrivateTest", f"{DATA / 'fer2013'}:PrivateTest"]


def scores(m: dict) -> dict:
    return {k: m[k] for k in ("n", "accuracy", "balanced_accuracy", "macro_f1", "ece",
                              "per_class", "confusion")}  # fmt: skip


def measure(args, out: Path, work: Path) -> dict:
    model, meta = load_model(args.run_dir / "model.pt")
    evals = [tuple(e.rsplit(":", 1)) for e in args.eval]

    @functools.cache  # the first set serves the export checks and its evaluation alike
    def faces_of(data: str):
        return load_eval_data(data, img_size=meta.img_size, preprocessing=meta.preprocessing,
                              prepared_dir=args.prepared, progress=False)  # fmt: skip

    first = faces_of(evals[0][0])
    test, training = select_split(first, evals[0][1]), select_split(first, "Training")
    check, calibration = test.spread(512), training.spread(512)
    fp32 = export_onnx(args.run_dir, work / "fp32.onnx", check_faces=check, eval_data=test,
                       tta=args.tta)  # fmt: skip
    int8 = export_onnx(args.run_dir, work / "int8.onnx", check_faces=check, int8=True,
                       calibration_faces=calibration, eval_data=test, tta=args.tta)  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(work / ("int8.onnx" if args.int8 else "fp32.onnx"), out)
    figures = {
        "bundled_name": args.name,
        "file": str(out.relative_to(REPO)) if out.is_relative_to(REPO) else str(out),
        "parameters": count_parameters(model),
        "labels": list(meta.labels),
        "img_size": meta.img_size,
        "tta": "hflip" if args.tta else "none",
        "weights": "int8" if args.int8 else "fp32",
        "onnx_bytes": out.stat().st_size,
        "onnx_vs_torch_max_abs_diff": (int8 if args.int8 else fp32).max_abs_diff,
        "int8_vs_fp32": {
            "on": f"{evals[0][0]} {evals[0][1]}",
            "accuracy_fp32": fp32.accuracy_onnx,
            "accuracy_int8": int8.accuracy_onnx,
            "change_points": 100 * (int8.accuracy_onnx - fp32.accuracy_onnx),
            "bytes_fp32": fp32.size_bytes,
            "max_abs_diff_fp32": fp32.max_abs_diff,
            "max_abs_diff_int8": int8.max_abs_diff,
            "bytes_int8": int8.size_bytes,
            "calibration": f"{len(calibration)} Training faces",
        },
        "evaluations": [],
    }
    for (data, split), prior in itertools.product(evals, PRIORS):
        folder = work / f"{Path(data).name}-{split}-{prior}"
        result, eval_dir = evaluate(out, data, split=split, out_dir=folder, prior=prior,
                                    prepared_dir=args.prepared, progress=False)  # fmt: skip
        row = {"data": Path(data).name, "split": split, "prior": prior, **scores(result.metrics)}
        prepared = faces_of(data)
        if "Training" in set(prepared.splits.tolist()) and split != "Training":
            # Test faces with a pixel-identical copy in Training (FER2013's flaw, DATA.md).
            kept = select_split(prepared, split).subset(np.flatnonzero(result.kept))
            fresh = ~copies_in(kept, select_split(prepared, "Training"))
            hits = result.y_true == result.y_pred
            row["without_training_copies"] = {"n": int(fresh.sum()),
                                              "accuracy": float(hits[fresh].mean())}  # fmt: skip
        figures["evaluations"].append(row)
        if len(figures["evaluations"]) == 1:
            shutil.copy(eval_dir / "confusion.png", RESULTS / f"bundled_{args.name}_confusion.png")
    mug = DATA / "mug_sample" / "img_0000.jpg"
    speed = measure_speed(out, mug if mug.is_file() else None, threads=1, repeats=300)
    figures["speed_one_thread"] = {k: v for k, v in speed.to_dict().items() if k != "model"}
    figures["photos"] = [photos_row(Path(p)) for p in args.photos]
    return figures


def photos_row(path: Path) -> dict:
    """A faces_in_photos result: the model's accuracy on pasted photos per set."""
    r = json.loads(path.read_text())
    return {"result": path.name, "model": r["model"], "held_out_of": r.get("held_out_of"),
            "prior": r.get("prior", "training"), "accuracy": r["accuracy"]}  # fmt: skip


#: What each layout's faces are, for a card's limits.
DATASETS = {
    "fer2013": "web faces, FER2013's labels",
    "ferplus": "FER2013's web faces with FER+'s ten-vote labels",
    "ckplus": "posed laboratory faces",
    "mug": "posed laboratory faces",
    "jaffe": "posed laboratory faces",
}


def training_text(run: dict, config: dict) -> str:
    c, a, d = config["classify"], config["augment"], config["data"]
    paths = d["path"] if isinstance(d["path"], list) else [d["path"]]
    weights = f", drawn {d['weights']} of the time" if d.get("weights") else ""
    augs = [k for k in ("brightness", "contrast", "zoom", "rotation", "translation", "hflip",
                        "gamma", "blur", "jpeg", "erasing", "context_fill")
            if a.get(k)]  # fmt: skip
    return (f"- Data: {', '.join(Path(p).name for p in paths)}{weights}; split sizes "
            f"{run['split_sizes']} (train / model selection / test).\n"
            f"- Config saved with the run; init `{c['init']}`, {run['classify']['epochs_run']} "
            f"epochs (best {run['classify']['best_epoch']}), AdamW lr {c['lr']}, cosine schedule, "
            f"label smoothing {c['label_smoothing']}, soft labels {c['soft_labels']}, class "
            f"balance `{c['class_balance']}`, online augmentation: {', '.join(augs)}.\n"
            f"- Command: `{run['command']}`")  # fmt: skip


def model_name(model: str) -> str:
    """A photos row's model: a bundled name, a file's name, or a run folder's for its model.onnx."""
    path = Path(model)
    return path.parent.name if path.name in ("model.onnx", "model.pt") else path.name


def model_card(f: dict, run: dict, config: dict) -> str:
    labels, first = f["labels"], f["evaluations"][0]
    evals = "\n".join(
        f"| {e['data']} {e['split']} | {e.get('prior', 'training')} | {e['n']} | "
        f"{e['accuracy']:.4f} | "
        f"{e['balanced_accuracy']:.4f} | {e['macro_f1']:.4f} | {e['ece']:.3f} |"
        for e in f["evaluations"]
    )
    copies = "".join(
        f"\n- {e['data']} {e['split']} without the faces that have a pixel-identical copy in "
        f"Training: {e['without_training_copies']['accuracy']:.4f} on "
        f"{e['without_training_copies']['n']} faces."
        for e in f["evaluations"]
        if "without_training_copies" in e and e.get("prior", "training") == PRIORS[0]
    )  # fmt: skip
    rows = "\n".join(
        f"| {name} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |"
        for name, c in first["per_class"].items()
    )
    photos = "\n".join(
        f"| {model_name(p['model'])} | {p.get('prior', 'training')} | "
        f"{name}: {a.get('sampled_from', 'all faces')} | {a['faces']} "
        f"| {a['crops']:.4f} | {a['photos']:.4f} | "
        + ", ".join(f"{c} {r:.2f}" for c, r in a.get("photo_recall", {}).items())
        + f" | {p['result']} |"
        for p in f["photos"] for name, a in p["accuracy"].items()
    ) or "| not measured | | | | | | | |"  # fmt: skip
    sp, q = f["speed_one_thread"], f["int8_vs_fp32"]
    train_min = f.get("wall_seconds", run["classify"]["seconds"]) / 60
    tta = (
        "each face averaged with its mirror image, in the graph" if f["tta"] == "hflip" else "none"
    )
    name, size = f["bundled_name"], f["img_size"]
    # From the run's own config and metrics, not typed in: what it was trained on, how its
    # faces are cut, what its graph holds besides the network.
    data = config["data"]
    paths = data["path"] if isinstance(data["path"], list) else [data["path"]]
    formats = data["format"] if isinstance(data["format"], list) else [data["format"]] * len(paths)
    trained_on = " and ".join(f"{Path(p).name} ({DATASETS.get(fmt, fmt)})"
                              for p, fmt in zip(paths, formats))  # fmt: skip
    landmarks = "Faces are cut by five MTCNN landmarks onto one template"
    cut = (f"{landmarks} (`tinyfer.core.faces.geometry`)." if data["geometry"] == "template" else
           f"Faces are cut by the detector's box widened by {data['margin']:g}.")  # fmt: skip
    adj = run.get("adjustments") or {}
    parts = ["temperature"] * (adj.get("temperature", 1.0) != 1.0)
    parts += ["class-balance bias"] * bool(adj.get("logit_bias"))
    adjusted = f", {' and '.join(parts)} inside the graph" if parts else ""
    return f"""# tinyfer's bundled model `{name}` (`{Path(f["file"]).name}`)

Facial expression recognition from a {size}x{size} gray face crop; classes: {", ".join(labels)}.
`Recognizer("{name}")`, `tinyfer predict --model {name}`. Every figure here is written by
`benchmarks/bundle_model.py` from measurements of the shipped file
(`benchmarks/results/bundled_{name}.json`, {f["date"]}).

## Model
- Architecture `{run["model"]}`, {f["parameters"]:,} parameters; ONNX {f["weights"]},
  {f["onnx_bytes"] / 1e6:.2f} MB; input `faces` (B, 1, {size}, {size}) float in [0, 1], output
  `probabilities` (B, {len(labels)}){adjusted}.
- Test-time augmentation: {tta}.
- Per face, batch 1, one thread: {sp["classify_ms"]:.3f} ms; batch {sp["batch"]}:
  {sp["batch_faces_per_s"]:,.0f} faces/s; the MUG frame end to end (MTCNN + this model):
  {sp["end_to_end_ms"]:.1f} ms ({f["machine"]["cpu"]}).
- onnxruntime vs torch on 512 test faces, max abs difference in probabilities: fp32 file
  {q["max_abs_diff_fp32"]:.1e}, int8 file {q["max_abs_diff_int8"]:.1e}.
- int8 vs fp32 on {q["on"]}: {q["accuracy_int8"]:.4f} vs {q["accuracy_fp32"]:.4f}
  ({q["change_points"]:+.2f} points), {q["bytes_int8"] / 1e6:.2f} vs {q["bytes_fp32"] / 1e6:.2f} MB.

## Data and training
{training_text(run, config)}
- Training time on a 2-core CPU (no GPU){f.get("conditions", "")}: {train_min:.0f} min
  ({run["classify"]["images_per_s"]:.0f} training images/s); peak RSS {run.get("peak_rss_mb")} MB.

## Results (the shipped file, `tinyfer evaluate --prior P`)
Under `balanced`, the default, every class is equally likely a priori; under `training`, as
often as in the training data (FER+: a third neutral), which suits FER+'s own test split.

| data | prior | n | accuracy | balanced accuracy | macro-F1 | ECE |
|---|---|---|---|---|---|---|
{evals}
{copies}

FER+ accuracy is against the majority vote (ties broken in FER+'s column order, neutral
first); FER2013 against its original labels, which FER+'s annotators contradict on about a
third of the faces.

Per class on {first["data"]} {first["split"]} ({first.get("prior", "training")} prior):

| class | precision | recall | F1 | support |
|---|---|---|---|---|
{rows}

## Faces in photos
`benchmarks/faces_in_photos.py`: dataset faces pasted into 720x576 photos, found by MTCNN; a
missed face counts as wrong. A row of another model than `{name}` is a run of the same recipe
without one of its datasets, for the figure on a dataset the recipe never saw
(`benchmarks/README.md` says which).

| model | prior | set: sampled from | faces | crops | photos | recall per class, photos | result |
|---|---|---|---|---|---|---|---|
{photos}

## Known limits
- Trained on {trained_on}; who is in them is not documented, so accuracy for any group of
  people has not been measured here.
- {size}x{size} gray crops: colour is discarded, and small or blurred faces are hard. {cut}
- It recognises prototypical expressions, not felt emotion.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--name", required=True, help=f"one of {', '.join(BUNDLED_MODELS)}")
    parser.add_argument("--eval", action="append", help="DATASET:SPLIT, repeatable")
    parser.add_argument("--photos", action="append", default=[], help="faces_in_photos JSON")
    parser.add_argument("--tta", action="store_true", help="Mirror averaging in the graph.")
    parser.add_argument("--int8", action="store_true", help="Ship the int8 file.")
    parser.add_argument("--out", type=Path, help="Default: the package's file for --name.")
    parser.add_argument("--wall-seconds", type=float, help="Wall time of the training command.")
    parser.add_argument("--conditions", default="", help="How it ran, e.g. ', one thread'.")
    parser.add_argument("--prepared", type=Path, help="Folder of prepared caches to re-use.")
    args = parser.parse_args()
    args.eval = args.eval or DEFAULT_EVALS
    out = args.out or BUNDLED_MODELS[args.name]
    run = json.loads((args.run_dir / "metrics.json").read_text())
    config = yaml.safe_load((args.run_dir / "config.yaml").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        args.prepared = args.prepared or Path(tmp) / "prepared"
        figures = measure(args, out, Path(tmp))
    if args.wall_seconds:
        figures["wall_seconds"] = args.wall_seconds
    figures["conditions"] = args.conditions
    figures["training"] = {k: run.get(k) for k in ("command", "model", "split_sizes", "classify",
                                                   "peak_rss_mb", "val", "test")}  # fmt: skip
    path = write_result(f"bundled_{args.name}", figures, "torch", "onnxruntime")
    saved = json.loads(path.read_text())
    card = out.with_suffix(".md")
    card.write_text(model_card({**figures, "date": saved["date"], "machine": saved["machine"]},
                               run, config))  # fmt: skip
    shutil.copy(args.run_dir / "model.pt", out.with_suffix(".pt"))
    print(f"{path}\n{out}\n{card}\n{out.with_suffix('.pt')}")


if __name__ == "__main__":
    main()
