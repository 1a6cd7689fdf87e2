"""Make the bundled model from a finished FER2013 run: export it into the package, measure it
on PublicTest and PrivateTest from the exported file, measure the int8 variant, and write
results/bundled_model.json and the package's MODEL_CARD.md from those measurements.

python benchmarks/bundle_model.py RUN_DIR [--data ../shared/data/fer2013] [--tta]
    [--wall-seconds S] [--command "the training command"]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import yaml
from common import RESULTS, write_result

from tinyfer.checkpoint import BUNDLED_MODEL, load_model
from tinyfer.evaluation.evaluate import copies_in, evaluate, load_eval_data, select_split
from tinyfer.export import export_onnx
from tinyfer.models import count_parameters

REPO = Path(__file__).resolve().parents[1]


def scores(m: dict) -> dict:
    return {k: m[k] for k in ("n", "accuracy", "balanced_accuracy", "macro_f1", "per_class",
                              "confusion")}  # fmt: skip


def measure(run_dir: Path, data: Path, out: Path, tta: bool, work: Path, cache: Path) -> dict:
    model, meta = load_model(run_dir / "model.pt")
    prepared = load_eval_data(data, img_size=meta.img_size, preprocessing=meta.preprocessing,
                              prepared_dir=cache, progress=False)  # fmt: skip
    private, training = select_split(prepared, "PrivateTest"), select_split(prepared, "Training")
    check = private.X[:: max(1, len(private) // 512)][:512]
    calibration = training.X[:: max(1, len(training) // 512)][:512]  # never the test faces
    fp32 = export_onnx(run_dir, out, check_faces=check, eval_data=private, tta=tta)
    int8 = export_onnx(run_dir, work / "int8.onnx", check_faces=check, int8=True,
                       calibration_faces=calibration, eval_data=private, tta=tta)  # fmt: skip
    figures = {
        "cut_by": prepared.manifest.get("cut_by", {}),  # how FER2013's faces were cut
        "parameters": count_parameters(model),
        "labels": list(meta.labels),
        "img_size": meta.img_size,
        "tta": "hflip" if tta else "none",
        "onnx_bytes": fp32.size_bytes,
        "onnx_vs_torch_max_abs_diff": fp32.max_abs_diff,
        "int8": {
            "onnx_bytes": int8.size_bytes,
            "accuracy": int8.accuracy_onnx,
            "accuracy_fp32": fp32.accuracy_onnx,
            "change_points": 100 * (int8.accuracy_onnx - fp32.accuracy_onnx),
            "calibration": "512 Training faces",
        },
    }
    for split in ("PublicTest", "PrivateTest"):
        result, eval_dir = evaluate(out, data, split=split, out_dir=work / split,
                                    prepared_dir=cache, progress=False)  # fmt: skip
        figures[split] = scores(result.metrics)
        if split == "PrivateTest":
            shutil.copy(eval_dir / "confusion.png", RESULTS / "bundled_confusion.png")
            # FER2013's test faces with a pixel-identical copy in Training (DATA.md's flaw):
            # the accuracy without them says how much the protocol's figure leans on them.
            fresh = ~copies_in(private.subset(np.flatnonzero(result.kept)), training)
            hits = result.y_true == result.y_pred
            figures["PrivateTest_without_training_copies"] = {
                "n": int(fresh.sum()), "accuracy": float(hits[fresh].mean()),
                "copies_left_out": int((~fresh).sum()),
                "accuracy_on_copies": float(hits[~fresh].mean()) if (~fresh).any() else None,
            }  # fmt: skip
    return figures


def framing(run: dict, cut: dict) -> str:
    """How the model's faces are cut, from what its file records."""
    pre = run["preprocessing"]
    if pre.get("geometry") == "template":
        trained = (f" In training, {cut.get('landmarks', 0):,} of {sum(cut.values()):,} FER2013"
                   " crops were cut by their landmarks and the rest taken whole."
                   if cut else "")  # fmt: skip
        return ("Faces are cut by their five MTCNN landmarks onto one template, FER2013's own "
                "mean framing (`tinyfer.faces.geometry`), in training and in `predict` alike; "
                "a face without landmarks is framed from its box." + trained)  # fmt: skip
    return (
        f"In `predict`, a detected face is cropped as its box plus a {pre['margin']:.0%} "
        "margin; how closely that matches FER2013's own framing has not been measured."
    )


def model_card(f: dict, run: dict, config: dict) -> str:
    p = f["PrivateTest"]
    dd = f["PrivateTest_without_training_copies"]
    labels = f["labels"]
    rows = "\n".join(
        f"| {name} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |"
        for name, c in p["per_class"].items()
    )
    conf = "\n".join(
        f"| **{name}** | " + " | ".join(str(v) for v in row) + " |"
        for name, row in zip(labels, p["confusion"])
    )
    train_min = f.get("wall_seconds", run["classify"]["seconds"]) / 60
    tta = (
        "faces averaged with their mirror image, inside the graph"
        if f["tta"] == "hflip"
        else "none"
    )

    def result(name: str, r: dict) -> str:
        return (f"| {name} | {r['n']} | {r['accuracy']:.4f} | {r['balanced_accuracy']:.4f} | "
                f"{r['macro_f1']:.4f} |")  # fmt: skip

    evaluate_cmd = (f"tinyfer evaluate src/tinyfer/assets/{BUNDLED_MODEL.name} "
                    "../shared/data/fer2013 --split PrivateTest")  # fmt: skip
    return f"""# tinyfer's bundled model: `{BUNDLED_MODEL.name}`

Facial expression recognition from a 48x48 gray face crop; seven classes: {", ".join(labels)}.
Every figure here is written by `benchmarks/bundle_model.py` from measurements
(`benchmarks/results/bundled_model.json`, {f["date"]}).

## Model
- Architecture: `{run["model"]}` (ResNet basic blocks after a stride-2 stem), {f["parameters"]:,}
  parameters; ONNX fp32, {f["onnx_bytes"] / 1e6:.1f} MB; input `faces` (B, 1, 48, 48) float in
  [0, 1], output `probabilities` (B, 7).
- Test-time augmentation: {tta}.
- onnxruntime vs torch on 512 PrivateTest faces: max abs difference
  {f["onnx_vs_torch_max_abs_diff"]:.1e} in probabilities.

## Data and training
- FER2013 (`../shared/data/fer2013`, image-folder edition): trained on Training
  ({run["split_sizes"]["train"]:,} faces), model selection (best epoch, early stopping) on
  PublicTest ({run["split_sizes"]["val"]:,}), PrivateTest ({run["split_sizes"]["test"]:,}) used
  only for the figures below.
- Command: `{run["command"]}`, config `configs/bundled.yaml` (saved with the run):
  init `{config["classify"]["init"]}`, {run["classify"]["epochs_run"]} epochs (best
  {run["classify"]["best_epoch"]}), AdamW lr {config["classify"]["lr"]}, cosine schedule, label
  smoothing {config["classify"]["label_smoothing"]}, online augmentation (brightness, contrast,
  zoom, rotation, translation, horizontal flip).
- Training time on a 2-core CPU (no GPU){f.get("conditions", "")}: {train_min:.0f} min
  ({run["classify"]["images_per_s"]:.0f} training images/s); peak RSS
  {run.get("peak_rss_mb") or "not recorded"} MB.

## Results (from the exported file, `tinyfer evaluate`)
| split | n | accuracy | balanced accuracy | macro-F1 |
|---|---|---|---|---|
{result("PublicTest (model selection)", f["PublicTest"])}
{result("**PrivateTest**", p)}

Reproduce: `{evaluate_cmd}`.

Per class on PrivateTest:

| class | precision | recall | F1 | support |
|---|---|---|---|---|
{rows}

Confusion matrix on PrivateTest (rows: true class, columns: predicted, in the same order):

| | {" | ".join(labels)} |
|---|{"---|" * len(labels)}
{conf}

Without the {dd["copies_left_out"]} PrivateTest faces that have a pixel-identical copy in Training
(a known flaw of FER2013): accuracy {dd["accuracy"]:.4f} on the other {dd["n"]}
(on the copies: {dd["accuracy_on_copies"] or 0:.4f}); reproduce with `--exclude-copies-of
Training` added to the command above.

int8 (static QDQ, calibrated on 512 Training faces): {f["int8"]["onnx_bytes"] / 1e6:.2f} MB,
PrivateTest accuracy {f["int8"]["accuracy"]:.4f} ({f["int8"]["change_points"]:+.2f} points).

## Known limits
- FER2013's labels are noisy (its authors estimated human accuracy at about 65%), its test
  splits share images with Training (`tinyfer data inspect` counts 568 exact copies), and
  disgust has 55 PrivateTest faces: per-class figures for it are unstable.
- FER2013 is web images found by keyword search; who is in it is not documented, so accuracy
  for any group of people, on posed laboratory data (CK+, MUG) or on video is not the figure
  above and has not been measured here.
- 48x48 gray crops: colour is discarded, and small or blurred faces are hard.
  {framing(run, f["cut_by"])}
- It recognises seven prototypical expressions, not felt emotion.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "fer2013")
    parser.add_argument("--tta", action="store_true", help="Mirror averaging in the graph.")
    parser.add_argument("--out", type=Path, default=BUNDLED_MODEL)
    parser.add_argument("--wall-seconds", type=float, help="Wall time of the training command.")
    parser.add_argument("--conditions", default="", help="How it ran, e.g. ', one thread'.")
    parser.add_argument("--prepared", type=Path, help="Folder of prepared caches to re-use.")
    args = parser.parse_args()
    run = json.loads((args.run_dir / "metrics.json").read_text())
    config = yaml.safe_load((args.run_dir / "config.yaml").read_text())
    _, meta = load_model(args.run_dir / "model.pt")
    run["preprocessing"] = meta.preprocessing
    with tempfile.TemporaryDirectory() as tmp:
        prepared = args.prepared or Path(tmp) / "prepared"
        figures = measure(args.run_dir, args.data, args.out, args.tta, Path(tmp), prepared)
    if args.wall_seconds:
        figures["wall_seconds"] = args.wall_seconds
    figures["conditions"] = args.conditions
    figures["training"] = {k: run.get(k) for k in ("command", "model", "split_sizes", "classify",
                                                   "pretrain", "peak_rss_mb")}  # fmt: skip
    path = write_result("bundled_model", figures, "torch", "onnxruntime")
    figures["date"] = json.loads(path.read_text())["date"]
    card = args.out.parent / "MODEL_CARD.md"
    card.write_text(model_card(figures, run, config))
    print(f"{path}\n{args.out}\n{card}")


if __name__ == "__main__":
    main()
