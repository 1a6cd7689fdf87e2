"""Statistics for comparing variants across the same folds: spread, confidence intervals,
paired tests, McNemar's test on pooled predictions, effect sizes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats


def summary(values: np.ndarray) -> dict[str, float]:
    """Mean, sample standard deviation and the 95% t confidence interval of the mean."""
    v = np.asarray(values, dtype=float)
    std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    return {"n": len(v), "mean": float(v.mean()), "std": std, "ci95": list(mean_ci(v, 0.95))}


def paired_test(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Compare per-fold scores ``a`` and ``b`` of two variants on the same folds.

    Wilcoxon's signed-rank test where there are at least 6 non-zero differences (below that it
    cannot reach p < 0.05); otherwise the paired t-test. Effect size: Cohen's d_z (mean
    difference over the standard deviation of the differences).
    """
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
    ca, cb = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a, only_b = int((ca & ~cb).sum()), int((~ca & cb).sum())
    n = only_a + only_b
    p = float(stats.binomtest(only_a, n, 0.5).pvalue) if n else 1.0
    odds = only_a / only_b if only_b else None  # undefined when B is never alone right
    return {"only_a_correct": only_a, "only_b_correct": only_b, "p_value": p, "odds_ratio": odds}


def mean_ci(d: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The two-sided ``level`` t confidence interval of the mean of ``d`` (NaNs below 2
    values)."""
    d = np.asarray(d, dtype=float)
    if len(d) < 2:
        return float("nan"), float("nan")
    se = float(d.std(ddof=1)) / math.sqrt(len(d))
    half = float(stats.t.ppf(0.5 + level / 2, len(d) - 1)) * se
    return float(d.mean()) - half, float(d.mean()) + half


def tost(d: np.ndarray, margin: float) -> float:
    """Two one-sided t-tests of equivalence: the p-value that the mean of ``d`` lies within
    ``(-margin, margin)`` (below 0.05 exactly when the 90% CI lies inside the margin)."""
    d = np.asarray(d, dtype=float)
    n, mean = len(d), float(np.mean(d))
    se = float(d.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
    if se == 0:
        return 0.0 if abs(mean) < margin else 1.0
    above = 1 - stats.t.cdf((mean + margin) / se, n - 1)  # H0: mean <= -margin
    below = stats.t.cdf((mean - margin) / se, n - 1)  # H0: mean >= margin
    return float(max(above, below))


def judge(d: np.ndarray, expect: str, margin: float) -> dict[str, Any]:
    """Whether paired differences ``d`` (A minus B, one per fold) support the claim that A is
    ``better`` than, ``worse`` than or ``equivalent`` to B (within ``margin``).

    ``supported`` / ``contradicted`` / ``inconclusive``. A difference needs its 95% CI to
    exclude 0; equivalence needs the 90% CI inside ``(-margin, margin)`` (TOST at 0.05). A
    non-significant difference is ``inconclusive``, never evidence of no effect.
    """
    low, high = mean_ci(d, 0.95)
    low90, high90 = mean_ci(d, 0.90)
    effect = float(np.mean(d))
    out = {"effect": effect, "ci95": [low, high], "ci90": [low90, high90], "margin": margin}
    if not np.isfinite(low):
        return out | {"verdict": "inconclusive", "why": "fewer than two folds"}
    gain, loss = low > 0, high < 0
    if expect == "equivalent":
        p = tost(d, margin)
        if p < 0.05:
            verdict, why = "supported", f"90% CI inside ±{margin:g} (TOST p={p:.3g})"
        elif gain or loss:
            verdict, why = "contradicted", "95% CI excludes 0: they differ"
        else:
            verdict, why = "inconclusive", (f"neither a difference nor equivalence within "
                                            f"±{margin:g} (TOST p={p:.3g})")  # fmt: skip
        return out | {"verdict": verdict, "why": why, "tost_p": p}
    wanted, opposite = (gain, loss) if expect == "better" else (loss, gain)
    if wanted:
        verdict, why = "supported", "95% CI excludes 0"
    elif opposite:
        verdict, why = "contradicted", "95% CI excludes 0, the other way"
    else:
        verdict, why = "inconclusive", "95% CI includes 0: these folds cannot tell"
    return out | {"verdict": verdict, "why": why}
