"""Calibration (ECE) against an independent implementation and a hand-checked example."""

from __future__ import annotations

import numpy as np
import pytest

from tamis.train.metrics import ECE_DEFINITION, bt_ece, ece


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def _ece_reference(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Written apart from tamis: np.histogram counts and sums per equal-width bin on [0, 1]."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    n, _ = np.histogram(p, edges)
    sum_p, _ = np.histogram(p, edges, weights=p)
    sum_y, _ = np.histogram(p, edges, weights=y)
    keep = n > 0
    return float(np.sum(np.abs(sum_p[keep] - sum_y[keep])) / len(p))


def test_hand_checked_example() -> None:
    # p = P(chosen preferred) of three pairs; the third pair is ranked the wrong way round.
    # Both orders: p = .82 .88 .12 (outcome 1) and .18 .12 .88 (outcome 0).
    # bin [0.8, 0.9): .82 .88 .88, mean .86, share positive 2/3 -> gap .19333, weight 1/2
    # bin [0.1, 0.2): .12 .18 .12, mean .14, share positive 1/3 -> gap .19333, weight 1/2
    margins = _logit(np.array([0.82, 0.88, 0.12]))
    assert bt_ece(margins) == pytest.approx(0.86 - 2 / 3, abs=1e-9)
    # the former variant (confidence binned on [0.5, 1] in 0.05-wide bins) gave 0.31333 here


def test_perfect_and_worst() -> None:
    assert ece(np.array([1.0, 0.0, 1.0]), np.array([1, 0, 1])) == 0.0
    assert ece(np.array([1.0, 0.0]), np.array([0, 1])) == 1.0
    assert "10 equal-width bins on [0, 1]" in ECE_DEFINITION


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_independent_implementation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    margins = rng.normal(0.8, 1.5, 300)
    p = 1 / (1 + np.exp(-margins))
    probs, outcomes = np.concatenate([p, 1 - p]), np.concatenate([np.ones(300), np.zeros(300)])
    assert bt_ece(margins) == pytest.approx(_ece_reference(probs, outcomes), abs=1e-12)
    # and a generic (not mirrored) probability/outcome set, including the bin edges
    q = np.concatenate([rng.uniform(0, 1, 500), np.linspace(0, 1, 11)])
    y = (rng.uniform(0, 1, q.size) < q).astype(float)
    assert ece(q, y) == pytest.approx(_ece_reference(q, y), abs=1e-12)


def test_matches_sklearn_calibration_curve() -> None:
    calibration = pytest.importorskip("sklearn.calibration")
    rng = np.random.default_rng(7)
    q = rng.uniform(0, 1, 400)
    y = (rng.uniform(0, 1, 400) < q**1.5).astype(int)
    prob_true, prob_pred = calibration.calibration_curve(y, q, n_bins=10, strategy="uniform")
    counts = np.histogram(q, np.linspace(0, 1, 11))[0]
    weights = counts[counts > 0] / q.size
    assert ece(q, y) == pytest.approx(float(np.sum(weights * np.abs(prob_true - prob_pred))))
