"""Statistics for comparing variants across the same folds: spread, confidence intervals,
paired tests, McNemar's test on pooled predictions, effect sizes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def summary(values: np.ndarray) -> dict[str, float]:
    """Mean, sample standard deviation and the 95% t confidence interval of the mean."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    n = len(v)
    mean = float(v.mean())
    std = float(v.std(ddof=1)) if n > 1 else 0.0
    half = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else float("nan")
    return {"n": n, "mean": mean, "std": std, "ci95": [mean - half, mean + half]}


def paired_test(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Compare per-fold scores ``a`` and ``b`` of two variants on the same folds.

    Wilcoxon's signed-rank test where there are at least 6 non-zero differences (below that it
    cannot reach p < 0.05); otherwise the paired t-test. Effect size: Cohen's d_z (mean
    difference over the standard deviation of the differences).
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = a - b
    sd = float(d.std(ddof=1)) if len(d) > 1 else 0.0
    out: dict[str, Any] = {
        "mean_difference": float(d.mean()),
        "differences": d.tolist(),
        "cohens_dz": float(d.mean() / sd) if sd > 0 else None,
    }
    if np.count_nonzero(d) >= 6:
        res = stats.wilcoxon(a, b)
        out.update(
            test="Wilcoxon signed-rank", statistic=float(res.statistic), p_value=float(res.pvalue)
        )
    elif len(d) > 1 and sd > 0:
        res = stats.ttest_rel(a, b)
        out.update(test="paired t-test", statistic=float(res.statistic), p_value=float(res.pvalue))
    else:
        out.update(test="none (identical or too few folds)", statistic=None, p_value=None)
    return out


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, Any]:
    """McNemar's exact test on paired per-sample correctness of two variants.

    ``b`` counts samples only A got right, ``c`` those only B got right; the p-value is the
    two-sided binomial test of b against c. Odds ratio b/c as the effect size.
    """
    from scipy import stats

    ca, cb = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a, only_b = int((ca & ~cb).sum()), int((~ca & cb).sum())
    n = only_a + only_b
    p = float(stats.binomtest(only_a, n, 0.5).pvalue) if n else 1.0
    odds = only_a / only_b if only_b else None  # undefined when B is never alone right
    return {"only_a_correct": only_a, "only_b_correct": only_b, "p_value": p, "odds_ratio": odds}
