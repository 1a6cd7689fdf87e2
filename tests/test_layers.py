"""The layers, each a package: core -> inference -> evaluation -> training -> experiments ->
the CLI. A module imports only from its own layer or those before it (at the top of a file
or inside a function), and importing a layer loads no library of a later one."""

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "src" / "tinyfer"
ORDER = ("errors", "core", "inference", "evaluation", "training", "experiments", "report_text",
         "cli", "__main__")  # fmt: skip
TRAINING = ("torch", "lightning", "kornia", "onnx", "onnxscript")
EVALUATION = ("sklearn", "scipy", "matplotlib")
EXTRAS = ("ray", "fastapi", "uvicorn")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: Path) -> set[str]:
    """Every tinyfer module ``path`` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: a relative import; tinyfer's imports are absolute")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tinyfer."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("tinyfer.")}
    return found


def _layer(module: str) -> str:
    return module.split(".")[1]


def test_every_module_imports_only_its_layer_and_those_before_it():
    wrong = []
    for module, path in _modules().items():
        if module == "tinyfer":
            continue  # the package's lazy table of public names
        for target in _imports(path):
            mine, theirs = ORDER.index(_layer(module)), ORDER.index(_layer(target))
            if theirs > mine:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_no_two_modules_import_each_other():
    """At any depth, module by module (``core.faces.detect`` and ``core.faces.mtcnn`` are two)."""
    graph = defaultdict(set)
    for module, path in _modules().items():
        if module != "tinyfer":
            graph[module] |= _imports(path) - {module}

    def reaches(start, goal, seen):
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n}))
                   for n in graph[start])  # fmt: skip

    assert sorted(m for m in list(graph) if reaches(m, m, {m})) == []


def _loaded(code: str) -> list[str]:
    """The packages of TRAINING, EVALUATION and EXTRAS that ``code`` leaves imported."""
    probe = (f"{code}\nimport sys\nnames = {TRAINING + EVALUATION + EXTRAS!r}\n"
             "print('loaded:', *(n for n in names if n in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.splitlines()[-1]  # after what the code printed
    assert last.startswith("loaded:"), done.stdout[-2000:]
    return last.split()[1:]


LIGHT = sorted(
    m for m in _modules() if m == "tinyfer.cli" or m.split(".")[1:2] in (["core"], ["inference"])
)


@pytest.mark.parametrize("module", [m for m in LIGHT if m != "tinyfer.inference.serve"])
def test_core_and_inference_load_no_training_evaluation_or_extras(module):
    assert _loaded(f"import {module}") == []


def test_evaluation_loads_no_training():
    assert not set(_loaded("import tinyfer.evaluation.evaluate")) & set(TRAINING)


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
    assert set(_loaded("import tinyfer.inference.serve")) <= {"fastapi", "uvicorn"}


def test_the_commands_help_loads_no_numpy_or_opencv():
    """``tinyfer --help`` and the commands' help answer at once: no layer imported."""
    for args in (["--help"], ["predict", "--help"], ["train", "--help"]):
        code = ("import sys\nfrom tinyfer.cli import main\n"
                f"sys.argv = ['tinyfer', *{args!r}]\n"
                "try:\n    main()\nexcept SystemExit:\n    pass\n"
                "print('loaded:', *(n for n in ('numpy', 'cv2', 'onnxruntime', 'torch')"
                " if n in sys.modules))")  # fmt: skip
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.stdout.splitlines()[-1] == "loaded:", (args, done.stdout[-500:])
