"""What each layer may load, checked in a fresh interpreter: the data core and inference
stay on numpy, OpenCV, Pillow and onnxruntime, so that the light install runs them."""

import subprocess
import sys

import pytest

TRAINING = ("torch", "lightning", "kornia", "onnx", "onnxscript")
EVALUATION = ("sklearn", "scipy", "matplotlib")
EXTRAS = ("ray", "fastapi", "uvicorn")

CORE = (
    "labels",
    "config",
    "io",
    "inputs",
    "model_files",
    "faces",
    "datasets",
    "prepare",
    "splits",
    "audit",
    "synth",
)
INFERENCE = ("classifier", "predict", "batch", "annotate", "bench", "cluster", "cli")


def _loaded(code: str) -> list[str]:
    """The packages of TRAINING, EVALUATION and EXTRAS that ``code`` leaves imported."""
    probe = (f"{code}\nimport sys\nnames = {TRAINING + EVALUATION + EXTRAS!r}\n"
             "print('loaded:', *(n for n in names if n in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.splitlines()[-1]  # after what the code printed
    assert last.startswith("loaded:"), done.stdout[-2000:]
    return last.split()[1:]


@pytest.mark.parametrize("module", CORE + INFERENCE)
def test_core_and_inference_modules_load_no_training_evaluation_or_extras(module):
    assert _loaded(f"import tinyfer.{module}") == []


def test_predicting_an_image_loads_no_training_or_evaluation(mug_frame):
    """Not only the imports: a bundled model loaded and a photo predicted, through the API
    and the command."""
    code = (f"from tinyfer import Recognizer\nfaces = Recognizer().predict({str(mug_frame)!r})\n"
            "assert len(faces) == 1, faces")  # fmt: skip
    assert _loaded(code) == []
    cli = ("import sys\nfrom tinyfer.cli import main\n"
           f"sys.argv = ['tinyfer', 'predict', {str(mug_frame)!r}, '-f', 'json']\n"
           "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code")  # fmt: skip
    assert _loaded(cli) == []


def test_the_service_loads_no_training_or_evaluation():
    assert set(_loaded("import tinyfer.serve")) <= {"fastapi", "uvicorn"}


def test_no_two_modules_import_each_other_even_inside_functions():
    """Every ``from .x import`` in the package, at the top or inside a function, as a graph
    of top-level modules and subpackages: it has no cycle."""
    import ast
    from collections import defaultdict
    from pathlib import Path

    root = Path(__file__).parents[1] / "src" / "tinyfer"
    names = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    unit = lambda name: ".".join(name.split(".")[:2])  # noqa: E731  (tinyfer.x)
    graph = defaultdict(set)
    for name, path in names.items():
        if name == "tinyfer":  # the package's lazy table of public names
            continue
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    other = unit(full if full in names else target)
                    if other != unit(name):
                        graph[unit(name)].add(other)

    def reaches(start, goal, seen):
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n}))
                   for n in graph[start])  # fmt: skip

    cycles = sorted(m for m in list(graph) if reaches(m, m, {m}))
    assert cycles == [], f"modules on an import cycle: {cycles}"
