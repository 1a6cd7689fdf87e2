"""Make a run folder again from a bundled model, for re-bundling it (``bundle_model.py``, e.g.
with ``--tta``) or sampling its held-out faces (``faces_in_photos.py --held-out-of``) after
the training's own folder is gone: model.pt is the shipped one, config.yaml the config saved
inside it, metrics.json the training figures of ``results/bundled_<name>.json`` with the
adjustments the model carries.

python benchmarks/run_of_bundled.py accurate|fast OUT_DIR
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import yaml
from common import RESULTS

from tinyfer.core.model_files import BUNDLED_MODELS
from tinyfer.training.checkpoint import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", choices=sorted(BUNDLED_MODELS))
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    shipped = BUNDLED_MODELS[args.name].with_suffix(".pt")
    model, meta = load_model(shipped)
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copy(shipped, args.out / "model.pt")
    (args.out / "config.yaml").write_text(yaml.safe_dump(meta.config, sort_keys=False))
    run = json.loads((RESULTS / f"bundled_{args.name}.json").read_text())["training"]
    run["adjustments"] = {"temperature": model.temperature, "logit_bias": model.logit_bias}
    (args.out / "metrics.json").write_text(json.dumps(run, indent=2) + "\n")
    print(args.out)


if __name__ == "__main__":
    main()
