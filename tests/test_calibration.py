import numpy as np
import pytest

from tinyfer.evaluation.calibration import (
    choose_logit_adjustment,
    expected_calibration_error,
    fit_adjustments,
    fit_temperature,
    softmax,
)


def test_ece_by_hand():
    # Confidence 0.8 on every face, 8 of 10 right: calibrated.
    probs = np.tile([0.8, 0.2], (10, 1))
    y = np.array([0] * 8 + [1] * 2)
    assert expected_calibration_error(probs, y) == pytest.approx(0.0)
    # Certain and right half the time: off by 0.5. Two bins: (0.5 conf, 1/2 right) and
    # (0.9 conf, all right) weigh 1/2 each: |0.5 - 0.5| / 2 + |1 - 0.9| / 2.
    assert expected_calibration_error(np.tile([1.0, 0.0], (4, 1)), np.array([0, 1, 0, 1])) == 0.5
    probs = np.array([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1], [0.9, 0.1]])
    assert expected_calibration_error(probs, np.array([0, 1, 0, 0])) == pytest.approx(0.05)


def test_temperature_undoes_overconfidence():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 1.5, (20000, 5))
    p = softmax(true_logits)
    y = np.array([rng.choice(5, p=row) for row in p])
    assert fit_temperature(3.0 * true_logits, y) == pytest.approx(3.0, rel=0.05)
    assert fit_temperature(true_logits, y) == pytest.approx(1.0, rel=0.05)


def test_logit_adjustment_finds_the_rare_class():
    """Scores that carry the training prior: the rare class is seldom the argmax until the
    prior is taken out; tau about 1 (the prior itself) restores it."""
    rng = np.random.default_rng(0)
    prior = np.array([0.6, 0.35, 0.05])
    y = np.repeat([0, 1, 2], 200)  # validation balanced
    logits = np.log(prior) + 2.0 * np.eye(3)[y] + rng.normal(0, 0.5, (600, 3))
    assert (logits.argmax(1)[y == 2] == 2).mean() < 0.3
    tau, scores = choose_logit_adjustment(logits, y, prior)
    assert 0.5 <= tau <= 1.5 and scores[tau] > scores[0.0] + 0.2
    found = fit_adjustments(logits, y, prior, balance=True, calibrate=True)
    assert found["tau"] == tau and np.allclose(found["logit_bias"], -tau * np.log(prior))
    assert found["ece_after"] <= found["ece_before"] + 1e-9


def test_no_adjustment_when_balance_is_off_or_useless():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 100)
    logits = 4.0 * np.eye(2)[y] + rng.normal(0, 0.3, (200, 2))
    found = fit_adjustments(logits, y, np.array([0.5, 0.5]), balance=True, calibrate=False)
    assert found["logit_bias"] is None and found["temperature"] == 1.0  # tau 0 ties: weakest
    assert fit_adjustments(logits, y, np.array([0.9, 0.1]), balance=False,
                           calibrate=False)["logit_bias"] is None  # fmt: skip
