"""Post-hoc adjustments of a trained classifier's logits, fitted on validation data: a bias per
class against the training set's class priors (logit adjustment, Menon et al., 2021), chosen by
macro-F1, and a temperature that makes the probabilities mean what they say (Guo et al., 2017).
Neither changes the weights; both are stored with the model."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.metrics import f1_score

#: The strengths of logit adjustment tried (0: none; 1: the Bayes-optimal shift for a
#: balanced error when the model's probabilities are right).
TAUS = tuple(np.round(np.arange(0.0, 2.01, 0.1), 2))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(logits))


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """The gap between confidence and accuracy, averaged over ``bins`` equal-width confidence
    bins weighted by how many predictions fall in each (0: calibrated)."""
    confidence, predicted = probs.max(1), probs.argmax(1)
    correct = predicted == y
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    gap = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            gap += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(gap)


def nll(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes."""
    return float(-log_softmax(logits)[np.arange(len(y)), y].mean())


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature ``T`` minimising the NLL of ``softmax(logits / T)`` (``T`` in 0.05-20)."""
    found = minimize_scalar(lambda t: nll(logits / np.exp(t), y), bounds=(-3.0, 3.0),
                            method="bounded", options={"xatol": 1e-4})  # fmt: skip
    return float(np.exp(found.x))


def fit_adjustments(
    logits: np.ndarray, y: np.ndarray, prior: np.ndarray, *, balance: bool, calibrate: bool
) -> dict:
    """The model's stored adjustments fitted on validation ``(logits, y)``: ``logit_bias``
    (None without ``balance``) and ``temperature`` (1.0 without ``calibrate``), with what was
    measured on the way."""
    out: dict = {"logit_bias": None, "temperature": 1.0}
    if balance:
        tau, scores = choose_logit_adjustment(logits, y, prior)
        out.update(tau=tau, macro_f1_by_tau=scores)
        if tau > 0:
            out["logit_bias"] = [float(b) for b in -tau * _log(prior)]
    adjusted = logits + (0.0 if out["logit_bias"] is None else np.array(out["logit_bias"]))
    out["ece_before"] = expected_calibration_error(softmax(adjusted), y)
    if calibrate:
        out["temperature"] = fit_temperature(adjusted, y)
    out["ece_after"] = expected_calibration_error(softmax(adjusted / out["temperature"]), y)
    return out


def choose_logit_adjustment(
    logits: np.ndarray, y: np.ndarray, prior: np.ndarray, taus=TAUS
) -> tuple[float, dict[float, float]]:
    """``(tau, macro-F1 per tau)``: the strength of ``logits - tau * log(prior)`` with the best
    macro-F1 on ``(logits, y)``; ties go to the weaker adjustment."""
    present = sorted(set(y.tolist()))
    log_prior = _log(prior)
    scores = {}
    for tau in taus:
        predicted = (logits - tau * log_prior).argmax(1)
        scores[float(tau)] = float(
            f1_score(y, predicted, labels=present, average="macro", zero_division=0)
        )
    best = max(scores, key=lambda t: (round(scores[t], 6), -t))
    return best, scores


def _log(prior: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(prior, 1e-12))  # a class absent from training: a large, finite bias
