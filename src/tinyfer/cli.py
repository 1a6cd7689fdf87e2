"""The ``tinyfer`` command: wiring only; the work happens in the library modules."""

from __future__ import annotations

import dataclasses
import faulthandler
import functools
import inspect
import json
import logging
import os
import sys
import time
import typing
import warnings
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.logging import RichHandler
from rich.table import Table

# The light modules only; each command imports its own layer when it runs (so `tinyfer
# predict` never pays for torch or Lightning, nor `tinyfer --help` for numpy and OpenCV).
from tinyfer.core.config import DataConfig, Executor, Format, TrainConfig, from_dict
from tinyfer.core.kinds import DETECTORS
from tinyfer.core.model_files import BUNDLED_MODELS, DEFAULT_MODEL, resolve_model_file
from tinyfer.core.terminal import PrintableRecords, printable, styled
from tinyfer.core.terminal import console as make_console
from tinyfer.errors import TinyferError

app = typer.Typer(
    help="Facial expression recognition with compact neural networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(
    help="Datasets: audit, prepare face crops, make demo data.", no_args_is_help=True
)
app.add_typer(data_app, name="data")

MODEL_HELP = (
    "A bundled model's name (accurate, the default; fast), a run directory, a model.pt or an "
    ".onnx file."
)
# --layout, not --format: --format is the output's (predict); a config calls it data.format.
LayoutOpt = Annotated[Format, typer.Option("--layout", "-l", help="The dataset's layout.")]
SPLIT_HELP = (
    "The dataset's split (e.g. PrivateTest) or all (the default). On the data a run was trained "
    "on: its own train, val or test part (the default: test, the faces it never saw)."
)
AddressOpt = Annotated[
    str | None,
    typer.Option(help="Ray cluster: auto, HOST:PORT or ray://HOST:PORT (default: this machine)."),
]


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False):
    if sys.stderr.isatty():
        handler: logging.Handler = RichHandler(show_path=False, show_time=False, console=_err())
    else:  # a log file: one plain line per record, never wrapped or padded
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)-8s %(message)s"))
    if not verbose:
        handler.addFilter(_ours_or_errors)
    handler.addFilter(PrintableRecords())
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", handlers=[handler]
    )


def _err():
    return make_console(stderr=True)


PriorOpt = Annotated[
    str | None,
    typer.Option(
        help="The class prior the predictions assume: balanced (default), training (the "
        "model's training frequencies) or label=weight pairs relative to balanced "
        "(neutral=0.5,anger=2).",
        show_default=False,
    ),
]


def _prior(text: str | None):
    """``--prior`` parsed (None: the default); TinyferError for a malformed one."""
    from tinyfer.core.priors import parse_prior

    return None if text is None else parse_prior(text)


def _run(fn):
    """Call ``fn``; a TinyferError becomes a one-line message and exit status 2."""
    try:
        return fn()
    except TinyferError as exc:
        _err().print(styled("error:", "bold red", exc), soft_wrap=True)
        raise typer.Exit(2) from None


@data_app.command("inspect")
def data_inspect(
    path: Annotated[Path, typer.Argument(help="Dataset folder (or fer2013.csv).")],
    layout: LayoutOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
    skip_unknown: Annotated[bool, typer.Option(help="Leave unknown label folders out.")] = False,
    workers: Annotated[int | None, typer.Option(help="Processes (default: all cores).")] = None,
):
    """Audit a dataset: counts, subjects, sizes, unreadable files, duplicates, conflicts."""
    from tinyfer.core.audit import audit_dataset
    from tinyfer.core.datasets import read_dataset
    from tinyfer.report_text import print_audit

    def work():
        scan = read_dataset(path, layout, skip_unknown=skip_unknown)
        return audit_dataset(scan, workers=workers, progress=not as_json)

    audit = _run(work)
    if as_json:
        json.dump(audit.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_audit(audit)


def _config_options(cls, names: tuple[str, ...]):
    """Give a command one option per field ``names`` of the config dataclass ``cls``, with
    the field's own type, default and help (so none is written twice); the command receives
    them as one ``settings`` dict."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}

    def decorate(fn):
        own = inspect.signature(fn, eval_str=True)
        extra = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=fields[name].default,
                              annotation=Annotated[hints[name], typer.Option(
                                  help=fields[name].metadata["help"])])
            for name in names
        ]  # fmt: skip
        params = [p for p in own.parameters.values() if p.name != "settings"] + extra

        def command(**kwargs):
            settings = {name: kwargs.pop(name) for name in names}
            return fn(**kwargs, settings=settings)

        command.__signature__ = own.replace(parameters=params)
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.__doc__, command.__name__ = fn.__doc__, fn.__name__
        return command

    return decorate


PREPARE_SETTINGS = ("frames", "n_frames", "geometry", "detector", "min_face", "img_size",
                    "margin", "align", "subject_regex", "skip_unknown")  # fmt: skip


@data_app.command("prepare")
@_config_options(DataConfig, PREPARE_SETTINGS)
def data_prepare(
    path: Annotated[Path, typer.Argument(help="Dataset folder (or fer2013.csv).")],
    layout: LayoutOpt = "auto",
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the cached arrays.")] = Path(
        "prepared"
    ),
    workers: Annotated[int | None, typer.Option(help="Processes (default: all cores).")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if the cache is current.")] = False,
    settings: dict | None = None,
):
    """Detect and crop faces once, and cache them as arrays with a manifest."""
    from tinyfer.core.prepare import prepare
    from tinyfer.report_text import print_prepared

    def work():
        cfg = from_dict(DataConfig, {"path": str(path), "format": layout, **settings},
                        where="data")  # fmt: skip
        return prepare(cfg, out, workers=workers, force=force)

    print_prepared(_run(work))


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Argument(help="Folder to write subjects3/ into.")],
    subjects: Annotated[int, typer.Option(help="Number of subjects.")] = 12,
    takes: Annotated[int, typer.Option(help="Takes per emotion and subject.")] = 2,
    frames: Annotated[int, typer.Option(help="Frames per take.")] = 12,
    size: Annotated[int, typer.Option(help="Frame side in pixels.")] = 256,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
):
    """Write a synthetic dataset in MUG's own layout (drawn faces, seven expressions)."""
    from tinyfer.core.synth import write_synthetic_mug

    root = write_synthetic_mug(
        out, subjects=subjects, takes=takes, frames=frames, size=size, seed=seed
    )
    n = subjects * 7 * takes * frames
    typer.echo(f"wrote {n} frames of {subjects} subjects to {root}")


SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a config key, e.g. --set classify.epochs=5."),
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", "-o", help="Run directory (default: runs/<name>-<time>).")
]
ResumeOpt = Annotated[
    bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")
]


def _train_config(config: Path, overrides, devices, num_nodes, strategy, resume=False, out=None):
    """The config with its overrides, checked before anything heavy is imported."""
    if resume and out is None:
        raise typer.BadParameter("--resume needs --out RUN_DIR")
    if resume and not Path(out).is_dir():
        raise typer.BadParameter(
            f"--resume: {out} does not exist, so there is nothing to resume; drop --resume to "
            "start a new run there"
        )

    overrides = list(overrides or [])
    for key, value in (("devices", devices), ("num_nodes", num_nodes), ("strategy", strategy)):
        if value is not None:
            overrides.append(f"trainer.{key}={value}")
    cfg = TrainConfig.from_yaml(config, overrides)

    import lightning  # noqa: F401  (its import installs handlers that would print twice)

    # A crash in native code (oneDNN, OpenMP) then leaves a Python traceback under the last
    # "phase ..." / "fold ..." line instead of nothing.
    faulthandler.enable(all_threads=True)

    for name in ("lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.setLevel(logging.WARNING)
    return cfg


DevicesOpt = Annotated[str | None, typer.Option(help="Lightning devices (e.g. 2, auto).")]
NodesOpt = Annotated[int | None, typer.Option(help="Lightning num_nodes (multi-node DDP).")]
StrategyOpt = Annotated[str | None, typer.Option(help="Lightning strategy (e.g. ddp).")]


def _training_command(phase: str, doc: str, report):
    """The ``train`` or ``pretrain`` command: ``training.phases``'s function of that name on
    the config and its overrides (checked before torch and Lightning are imported), then
    ``report`` of what it returns."""

    def command(
        config: Annotated[Path, typer.Argument(help="YAML config (see configs/).")],
        set_: SetOpt = None,
        out: OutOpt = None,
        resume: ResumeOpt = False,
        devices: DevicesOpt = None,
        num_nodes: NodesOpt = None,
        strategy: StrategyOpt = None,
    ):
        def work():
            cfg = _train_config(config, set_, devices, num_nodes, strategy, resume, out)
            from tinyfer.training import phases

            return getattr(phases, phase)(cfg, out, resume=resume)

        report(_run(work))

    command.__doc__ = doc
    return command


def _report_run(result) -> None:
    _print_scores(result.metrics)
    typer.echo(
        f"results: {result.run_dir} (model.pt, model.onnx, metrics.json, history.csv, curves.png)"
    )


app.command("train")(_training_command(
    "train", "Train a model: phase 1 (autoencoder) if configured, then phase 2 "
    "(classification).", _report_run))  # fmt: skip
app.command("pretrain")(_training_command(
    "pretrain", "Run phase 1 alone: train the encoder as an autoencoder; writes encoder.pt.",
    lambda encoder: typer.echo(f"encoder: {encoder}")))  # fmt: skip


def _print_scores(m: dict) -> None:
    """Validation and test scores of a run, with every class's recall."""
    a = m.get("adjustments") or {}
    if a:
        typer.echo(f"fitted on validation: temperature {a.get('temperature', 1.0):.3f}, logit "
                   f"adjustment tau {a.get('tau', 'off')}")  # fmt: skip
    for role in ("val", "test"):
        if role in m:
            r = m[role]
            recall = ", ".join(f"{k} {v['recall']:.2f}" for k, v in r["per_class"].items())
            typer.echo(
                f"{role}: accuracy {r['accuracy']:.4f}, balanced {r['balanced_accuracy']:.4f}"
                f", macro-F1 {r['macro_f1']:.4f}, ECE {r.get('ece', float('nan')):.4f} "
                f"(n={r['n']}); recall: {recall}"
            )
            for name, by in r.get("by_source", {}).items():
                typer.echo(f"  {name}: accuracy {by['accuracy']:.4f}, macro-F1 "
                           f"{by['macro_f1']:.4f} (n={by['n']})")  # fmt: skip


@app.command("adjust")
def adjust_cmd(
    run: Annotated[Path, typer.Argument(help="A finished run directory.")],
    class_balance: Annotated[
        Literal["logit_adjustment", "none"] | None,
        typer.Option(
            help="logit_adjustment (a bias per class, chosen by validation macro-F1) or none; "
            "default: the run's setting"
        ),
    ] = None,
    calibrate: Annotated[
        bool | None, typer.Option(help="Fit the temperature; default: the run's setting")
    ] = None,
):
    """Fit a run's class balance and temperature again, without retraining.

    Both are fitted on the run's validation split; rewrites its model.pt, model.onnx and
    metrics.json."""
    from tinyfer.training.phases import adjust

    _print_scores(_run(lambda: adjust(run, class_balance=class_balance, calibrate=calibrate)))


@app.command("models")
def models_cmd():
    """List the bundled models (for predict) and the registered architectures (for train)."""
    from tinyfer.inference.classifier import OnnxClassifier

    console = make_console()
    bundled = Table("bundled model", "file", "MB", "classes", "mirror TTA", "card",
                    title="--model NAME / Recognizer(NAME)")  # fmt: skip
    for name, file in BUNDLED_MODELS.items():
        if not file.is_file():
            bundled.add_row(name, "missing from this install", "", "", "", "")
            continue
        clf = OnnxClassifier(file)
        bundled.add_row(name + (" (default)" if name == DEFAULT_MODEL else ""), file.name,
                        f"{file.stat().st_size / 1e6:.1f}", str(len(clf.labels)), clf.tta,
                        file.with_suffix(".md").name)  # fmt: skip
    console.print(bundled)
    try:
        from tinyfer.training.models import count_parameters, create_model, list_models, model_info
    except ModuleNotFoundError as exc:  # the light install: predicting needs none of them
        console.print(f"architectures to train: they need {exc.name}, which comes with the "
                      "train extra: pip install 'tinyfer[train]'", highlight=False)  # fmt: skip
        return
    table = Table("architecture", "parameters", "decoder parameters", "description",
                  title="model.name in a training config")  # fmt: skip
    for name in list_models():
        m = create_model(name)
        table.add_row(
            name,
            f"{count_parameters(m):,}",
            f"{count_parameters(m.make_decoder()):,}",
            model_info(name).description,
        )
    console.print(table)


@app.command("evaluate")
def evaluate_cmd(
    model: Annotated[Path, typer.Argument(help=MODEL_HELP)],
    data: Annotated[Path, typer.Argument(help="Dataset folder, fer2013.csv or prepared .npz.")],
    layout: LayoutOpt = "auto",
    split: Annotated[str | None, typer.Option(help=SPLIT_HELP)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for the results.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    exclude_copies_of: Annotated[
        str | None,
        typer.Option(help="Leave out faces with a pixel-identical copy in this split (Training)."),
    ] = None,
    skip_unknown: Annotated[bool, typer.Option(help="Leave unknown label folders out.")] = False,
    prior: PriorOpt = None,
):
    """Accuracy, balanced accuracy, macro-F1, per-class scores, confusion matrix, mistakes."""
    from tinyfer.evaluation.evaluate import evaluate
    from tinyfer.report_text import print_evaluation

    result, out_dir = _run(
        lambda: evaluate(
            model,
            data,
            format=layout,
            split=split,
            out_dir=out,
            progress=not as_json,
            exclude_copies_of=exclude_copies_of,
            skip_unknown=skip_unknown,
            prior=_prior(prior),
        )
    )
    if as_json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_evaluation(result, out_dir)


@app.command("experiment")
def experiment_cmd(
    config: Annotated[Path, typer.Argument(help="YAML config with an experiment section.")],
    set_: SetOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Experiment folder (resumes if it exists).")
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(help="subject (default), loso (one fold per subject) or random (leaky)."),
    ] = None,
    executor: Annotated[
        Executor | None,
        typer.Option(help="Where trainings run: local (default) or ray (the ray extra)."),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(min=1, help="Trainings at once: local processes, or a local Ray's CPUs."),
    ] = None,
    address: AddressOpt = None,
):
    """Train and test every grid variant on subject-grouped folds; stats and a report.

    Each fold is kept as it finishes: the same command with --out resumes, on any executor."""

    def work():
        overrides = list(set_ or [])
        if protocol:
            overrides.append(f"experiment.protocol={protocol}")
        if executor is not None:
            overrides.append(f"experiment.executor={executor}")
        if jobs is not None:
            overrides.append(f"experiment.jobs={jobs}")
        if address is not None:  # quoted: YAML would read some HOST:PORT as a number
            overrides.append(f"experiment.address={json.dumps(address)}")
        cfg = _train_config(config, overrides, None, None, None)
        from tinyfer.experiments.grid import run_experiment  # torch, once the config is good

        folder = out or Path("runs") / f"experiment-{config.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        return run_experiment(cfg, folder, progress=cfg.trainer.progress)

    exp_dir = _run(work)
    typer.echo(f"report: {exp_dir / 'report.html'} (and report.md, results.json)")


@app.command("export")
def export_cmd(
    model: Annotated[Path, typer.Argument(help="Run directory or model.pt.")],
    onnx: Annotated[Path, typer.Option("--onnx", help="The ONNX file to write.")],
    int8: Annotated[bool, typer.Option(help="Quantise to int8 (needs --data).")] = False,
    data: Annotated[
        Path | None,
        typer.Option(help="Labelled faces (dataset or .npz): check, calibration, accuracy."),
    ] = None,
    split: Annotated[str | None, typer.Option(help=SPLIT_HELP)] = None,
    calibration_split: Annotated[
        str | None, typer.Option(help="The split int8 calibrates on (default: --split).")
    ] = None,
    faces: Annotated[int, typer.Option(help="How many faces to check and calibrate with.")] = 512,
    tta: Annotated[
        bool, typer.Option(help="Average each face with its mirror image, inside the graph.")
    ] = False,
):
    """Export a trained model to ONNX, checked against torch on real faces.

    With --data, the accuracy of torch and of the exported file on --split (the cost of
    --int8)."""
    from tinyfer.evaluation.evaluate import eval_sets
    from tinyfer.training.checkpoint import load_model
    from tinyfer.training.export import export_model

    def work():
        evaluation = check = calibration = chosen = None
        torch_model, meta = load_model(resolve_model_file(model))
        if data is not None:
            splits = [split] if calibration_split in (None, split) else [split, calibration_split]
            sets = eval_sets(model, meta, data, splits)  # the data prepared once
            chosen, calibrate_on = sets[0], sets[-1]
            evaluation, check = chosen.faces, chosen.faces.spread(faces)
            calibration = calibrate_on.faces.spread(faces)
        result = export_model(
            torch_model, meta, onnx, check_faces=check, int8=int8, calibration_faces=calibration,
            eval_data=evaluation, tta=tta,
        )  # fmt: skip
        return result, chosen and chosen.split, 0 if check is None else len(check)

    result, used, checked = _run(work)
    typer.echo(f"wrote {result.path} ({result.size_bytes / 1e6:.2f} MB)")
    if result.max_abs_diff is not None:
        typer.echo(
            f"onnxruntime vs torch on {checked} faces: max abs difference "
            f"{result.max_abs_diff:.2e} (probabilities)"
        )
    if result.accuracy_torch is not None:
        change = 100 * (result.accuracy_onnx - result.accuracy_torch)
        typer.echo(
            f"accuracy on {used} (n={result.eval_n}): torch {result.accuracy_torch:.4f}, "
            f"{'int8' if int8 else 'fp32'} ONNX {result.accuracy_onnx:.4f} ({change:+.2f} points)"
        )


@app.command("predict")
def predict_cmd(
    inputs: Annotated[
        list[str] | None,
        typer.Argument(help="Images, folders, globs or videos.", show_default=False),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option("--model", "-m", help=MODEL_HELP),
    ] = None,
    detector: Annotated[
        Literal[tuple(DETECTORS)],  # type: ignore[valid-type]
        typer.Option(help="; ".join(f"{d.name}: {d.help}" for d in DETECTORS.values()) + "."),
    ] = "mtcnn",
    format: Annotated[
        Literal["table", "json", "csv"], typer.Option("--format", "-f", help="Output format.")
    ] = "table",
    annotate: Annotated[
        Path | None, typer.Option("--annotate", help="Write annotated images/videos here.")
    ] = None,
    every: Annotated[int, typer.Option(min=1, help="Video: use every N-th frame.")] = 1,
    webcam: Annotated[
        bool,
        typer.Option(
            "--webcam",
            help="Read the camera too (no window: results go to stdout, --annotate records it).",
        ),
    ] = False,
    camera: Annotated[int, typer.Option(help="Camera index for --webcam.")] = 0,
    max_frames: Annotated[
        int | None, typer.Option(min=1, help="Stop each video/camera after N used frames.")
    ] = None,
    track: Annotated[
        bool, typer.Option(help="Video/camera: follow each face across frames (a track id).")
    ] = True,
    smooth: Annotated[
        float,
        typer.Option(min=0, max=3600, help="Tracks: seconds of probability smoothing (0: none)."),
    ] = 0.25,
    detect_every: Annotated[
        int, typer.Option(min=1, help="Tracks: detect every N used frames, follow in between.")
    ] = 1,
    summary: Annotated[
        Path | None, typer.Option(help="Tracks: write each video's per-track summary (JSON).")
    ] = None,
    timeline: Annotated[
        Path | None, typer.Option(help="Tracks: draw each one's emotions over time (PNG).")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="Tracks: an HTML report: timeline, a face per track, the summary."),
    ] = None,
    min_face: Annotated[
        float | None,
        typer.Option(
            help="Smallest face to find, fraction of the shorter side (default: mtcnn 0.1, "
            "haar 0.2)."
        ),
    ] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="onnxruntime threads.")] = None,
    executor: Annotated[
        Executor,
        typer.Option(help="local, or ray: inputs shared among Ray workers (the ray extra)."),
    ] = "local",
    workers: Annotated[int, typer.Option(min=1, help="Ray: workers, a recognizer each.")] = 2,
    address: AddressOpt = None,
    prior: PriorOpt = None,
):
    """Recognise the expressions of the faces in images, folders, videos or a camera.

    Results stream to stdout (one line/record per face); problems and the summary go to
    stderr. The exit status is 1 only when no input at all could be processed. With
    --executor ray, each input's records come when a worker finishes it, in that order.
    """
    from tinyfer.core.io import check_writable
    from tinyfer.inference.batch import RayOptions, run_predictions
    from tinyfer.inference.predict import Recognizer
    from tinyfer.inference.track import TrackOptions

    if not inputs and not webcam:
        raise typer.BadParameter("give at least one input, or --webcam")
    for option, path in {"--summary": summary, "--timeline": timeline, "--report": report}.items():
        if path is not None and not track:
            raise typer.BadParameter(f"{option} is made of tracks: not with --no-track")
        if path is not None:  # before any decoding
            _run(functools.partial(check_writable, path, option))
    drawn = timeline is not None or report is not None
    if drawn:
        from tinyfer.evaluation.timeline import Timeline  # the eval extra, said before work
    tracking = TrackOptions(smooth=smooth, detect_every=detect_every) if track else False
    err = _err()

    def problem(source: str, message: str) -> None:
        line = printable(f"{source}: {message}", one_line=True)  # a name must not break it
        err.print(styled("skipped:", "bold red", line), soft_wrap=True)

    make = functools.partial(Recognizer, model, detector=detector, min_face=min_face,
                             threads=threads, prior=_run(lambda: _prior(prior)))  # fmt: skip
    rec = _run(make)  # here too on Ray: a bad --model fails before the workers start
    shown = Timeline(rec.labels) if drawn else None
    ray = None
    if executor == "ray":
        ray = RayOptions(functools.partial(make, threads=threads or 1), workers, address)
    s = _run(lambda: run_predictions(
        rec, inputs or [], sys.stdout, fmt=format, annotate_dir=annotate, every=every,
        camera=camera if webcam else None, max_frames=max_frames, track=tracking,
        on_problem=problem, on_record=shown.add if shown else lambda record: None, ray=ray,
    ))  # fmt: skip
    _tell(s, rec, annotate, err)
    _write_track_outputs(s.tracks, shown, summary, timeline, report, err)
    if not s.processed:
        raise typer.Exit(1)


def _tell(s, rec, annotate: Path | None, err) -> None:
    """``predict``'s summary on stderr: what was processed, skipped, not found, cut how."""
    if s.interrupted:
        err.print(f"interrupted: stopped {s.interrupted}; the records before it are written",
                  highlight=False, soft_wrap=True)  # fmt: skip
    parts = [f"{s.images} image(s)"] + (
        [f"{s.videos} video(s), {s.frames} frames"] * bool(s.videos)
    )
    err.print(
        f"{', '.join(parts)}: {s.faces} face(s)"
        + (f"; {len(s.failed)} input(s) skipped" if s.failed else "")
        + (f"; {s.skipped} non-media file(s) in folders ignored" if s.skipped else ""),
        highlight=False,
    )
    searched = getattr(rec.detector, "min_face", None) if s.without_face else None
    if searched:
        err.print(
            f"{s.without_face} image(s) or frame(s) without a face; faces smaller than "
            f"{searched:.0%} of the image's shorter side are not searched for (--min-face)",
            highlight=False,
            soft_wrap=True,
        )
    if s.box_framed:
        err.print(
            f"{s.box_framed} face(s) without landmarks were cut by their box's calibrated "
            "framing, not by landmarks (crops taken whole, or --detector haar)",
            highlight=False,
            soft_wrap=True,
        )
    if annotate is not None and s.processed:
        err.print(f"annotated copies: {annotate}", highlight=False)


def _write_track_outputs(videos, shown, summary, timeline, report, err) -> None:
    """``predict``'s --summary, --timeline and --report, from what tracking found."""
    from tinyfer.core.config import command_line
    from tinyfer.core.io import atomic_path

    if summary is not None:
        listed = [{"file": name, "tracks": found.tracks} for name, found in videos.items()]
        with atomic_path(summary) as tmp:
            tmp.write_text(json.dumps({"videos": listed}, indent=2) + "\n")
    if timeline is not None or report is not None:
        from tinyfer.evaluation.timeline import plot_timeline, write_video_report

        if timeline is not None:
            with atomic_path(timeline) as tmp:
                plot_timeline(shown, tmp.with_suffix(".png")).rename(tmp)
        if report is not None:
            with atomic_path(report) as tmp:
                write_video_report(tmp, shown, videos, command_line())
    written = [str(p) for p in (summary, timeline, report) if p is not None]
    if written:
        faceless = sum(not found.tracks for found in videos.values())
        err.print(f"tracks: {', '.join(written)}" + (
            f" (no face in {faceless} video(s): nothing to track there)" if faceless else ""
        ), highlight=False, soft_wrap=True)  # fmt: skip


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on (other machines: 0.0.0.0).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    model: Annotated[str | None, typer.Option("--model", "-m", help=MODEL_HELP)] = None,
    workers: Annotated[int, typer.Option(min=1, help="Inference threads.")] = 2,
    queue: Annotated[int, typer.Option(min=0, help="Requests that may wait before 503.")] = 8,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="TINYFER_API_KEY", help="Require this key (X-API-Key) to see images."),
    ] = None,
    max_mb: Annotated[float, typer.Option(min=0.01, help="Largest request body, MB.")] = 20,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds per request.")] = 30,
    cors: Annotated[
        list[str] | None, typer.Option(help="An origin allowed to call from a browser (repeat).")
    ] = None,
    prior: PriorOpt = None,
):
    """Serve the recognizer over HTTP: /v1/predict, /docs, a page at / (the serve extra)."""
    from tinyfer.inference.serve import MB, ServeConfig, serve

    cfg = ServeConfig(model=model, prior=_run(lambda: _prior(prior)), api_key=api_key,
                      workers=workers, queue=queue,
                      max_bytes=int(max_mb * MB), timeout=timeout, cors=cors or [])  # fmt: skip
    _run(lambda: serve(cfg, host, port))


@app.command("bench")
def bench_cmd(
    model: Annotated[
        Path | None,
        typer.Option("--model", "-m", help=MODEL_HELP),
    ] = None,
    image: Annotated[
        Path | None, typer.Option(help="A photo to time on (default: a drawn 896x896 face).")
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="Threads for onnxruntime and OpenCV.")] = 1,
    repeats: Annotated[int, typer.Option(min=1, help="Timed runs per figure.")] = 100,
    min_face: Annotated[
        float | None,
        typer.Option(
            help="Smallest face to find, fraction of the shorter side (default: the detector's)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
):
    """Time tinyfer on this machine: per face, per batch, detection, whole frame."""
    from tinyfer.inference.bench import measure_speed

    s = _run(lambda: measure_speed(model, image, threads=threads, repeats=repeats,
                                   min_face=min_face))  # fmt: skip
    if as_json:
        json.dump(s.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return

    shape = "x".join(map(str, s.image_shape[:2]))
    table = Table("measure", "median", title=f"{Path(s.model).name}, {s.threads} thread(s)")
    table.add_row("classify one face (batch 1)", f"{s.classify_ms:.3f} ms")
    table.add_row(f"classify a batch of {s.batch}", f"{s.batch_faces_per_s:,.0f} faces/s")
    table.add_row(f"detect faces ({shape})", f"{s.detect_ms:.2f} ms")
    table.add_row(f"frame -> predictions ({s.faces_found} face(s))", f"{s.end_to_end_ms:.2f} ms")
    make_console().print(table)
    typer.echo(f"model: {s.model}\nimage: {s.image}; medians of {s.repeats} runs after a warm-up")


def _quiet_libraries() -> None:
    # Read by OpenCV when it first loads FFmpeg, so set before anything imports cv2.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # e.g. "moov atom not found"
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module=r"tinyfer(\.|$)")


def _ours_or_errors(record: logging.LogRecord) -> bool:
    return record.name.startswith("tinyfer") or record.levelno >= logging.ERROR


#: What only an extra installs, and which: a command that needs one of them says so.
EXTRA_MODULES = {
    **dict.fromkeys(("torch", "lightning", "kornia", "onnx", "onnxscript"), "train"),
    **dict.fromkeys(("sklearn", "scipy", "matplotlib"), "eval"),
    **dict.fromkeys(("fastapi", "starlette", "uvicorn", "multipart"), "serve"),
    "ray": "ray",
}


def main() -> None:
    """The ``tinyfer`` command. On the light install (no extras), a command that needs one
    says so in one line and exits with status 2, instead of a traceback. Without
    ``-v`` the libraries' own chatter (warnings, FFmpeg's and OpenCV's log lines) is muted: a
    user sees tinyfer's messages."""
    if not {"-v", "--verbose"} & set(sys.argv[1:]):
        _quiet_libraries()
    try:
        app(prog_name="tinyfer")
    except ModuleNotFoundError as exc:
        module = (exc.name or "").split(".")[0]
        if module not in EXTRA_MODULES:
            raise

        extra = EXTRA_MODULES[module]
        _err().print(
            styled(
                "error:",
                "bold red",
                f"this needs {module}, which comes with the {extra} extra: pip install "
                f"'tinyfer[{extra}]' (from a checkout: pip install '.[{extra}]')",
            ),
            soft_wrap=True,
        )
        raise SystemExit(2) from None
