"""What each layer may load, checked in a fresh interpreter: the data core and inference
stay on numpy, OpenCV, Pillow and onnxruntime, so that the light install runs them."""

import subprocess
import sys

import pytest

TRAINING = ("torch", "lightning", "kornia", "onnx", "onnxscript")
EVALUATION = ("sklearn", "scipy", "matplotlib")
EXTRAS = ("ray", "fastapi", "uvicorn")

CORE = ("labels", "config", "io", "faces", "datasets", "prepare", "splits", "audit", "synth")
INFERENCE = ("predict", "batch", "annotate", "bench", "checkpoint", "cluster", "cli")


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
