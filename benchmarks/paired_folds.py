"""Compare variants of separate experiments on the same folds, from their recorded summaries.

python benchmarks/paired_folds.py BASELINE.json VARIANT OTHER.json [OTHER.json ...] --name NAME

Each file is an `experiment_summary.py` result; every variant of the others is tested against
the baseline's VARIANT fold by fold (`tinyfer.experiments.stats.paired_test`). The folds must
be the same: every protocol field the summaries keep (dataset, layout, samples, subjects,
labels, protocol, folds, repeats, seeds) is checked, not assumed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import write_result
from experiment_summary import KEPT

from tinyfer.experiments.stats import paired_test


def compare(baseline: dict, variant: str, others: list[dict]) -> dict:
    if variant not in baseline["variants"]:
        known = ", ".join(baseline["variants"])
        raise SystemExit(f"{baseline['name']}: no variant {variant!r} (it has: {known})")
    base = baseline["variants"][variant]["fold_accuracy"]
    comparisons = {}
    for other in others:
        for key in KEPT:
            if other["protocol"].get(key) != baseline["protocol"].get(key):
                raise SystemExit(
                    f"{other['name']}: not the same folds as {baseline['name']} ({key}: "
                    f"{other['protocol'].get(key)!r} vs {baseline['protocol'].get(key)!r})"
                )
        for name, v in other["variants"].items():
            comparisons[f"{other['name']}: {name}"] = {
                "accuracy": v["accuracy"],
                **paired_test(v["fold_accuracy"], base),
            }
    return {
        "baseline": f"{baseline['name']}: {variant}",
        "baseline_accuracy": baseline["variants"][variant]["accuracy"],
        "baseline_fold_accuracy": base,
        "comparisons": comparisons,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path)
    parser.add_argument("variant")
    parser.add_argument("others", type=Path, nargs="+")
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    read = [json.loads(p.read_text()) for p in (args.baseline, *args.others)]
    figures = compare(read[0], args.variant, read[1:])
    for name, c in figures["comparisons"].items():
        print(f"{name}: {c['mean_difference']:+.4f} ({c['test']}, p = {c['p_value']})")
    print(write_result(args.name, figures, "scipy"))


if __name__ == "__main__":
    main()
