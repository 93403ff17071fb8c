"""Figures written per run: accuracies with Wilson CIs, calibration (ECE), correlations."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tamis.stats import wilson


def proportion(wins: Sequence[float]) -> dict[str, float]:
    """Mean of 0/1 (or 0.5 for ties) outcomes with its CI and n."""
    n = len(wins)
    value = float(np.mean(wins)) if n else 0.0
    lo, hi = wilson(value * n, n)
    return {"value": value, "ci_low": lo, "ci_high": hi, "n": n}


def pairwise_accuracy(chosen: np.ndarray, rejected: np.ndarray) -> dict[str, float]:
    """Share of pairs where chosen scores above rejected (ties count half)."""
    wins = np.where(chosen > rejected, 1.0, np.where(chosen == rejected, 0.5, 0.0))
    return proportion(wins.tolist())


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


#: How `bt_ece` bins, written next to the figure in the run's metrics.
ECE_DEFINITION = (
    "expected calibration error of P(chosen preferred) = sigmoid(r_chosen - r_rejected): "
    "10 equal-width bins on [0, 1] of the predicted probability, each held-out pair shown in both "
    "orders (p with outcome 1, 1 - p with outcome 0); equal to the confidence ECE of Guo et al. "
    "(2017) with max(p, 1 - p) binned on [0, 1]"
)


def ece(probs: np.ndarray, outcomes: np.ndarray, bins: int = 10) -> float:
    """Standard binary ECE: sum over `bins` equal-width bins on [0, 1] of the predicted
    probability of the positive outcome of (share of rows in bin) * |mean p - share positive|.

    Bins are [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0] (the last one closed), as sklearn's
    `calibration_curve(strategy="uniform")`.
    """
    p = np.asarray(probs, dtype=float)
    y = np.asarray(outcomes, dtype=float)
    if p.size == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    ids = np.searchsorted(edges[1:-1], p, side="right")
    total = 0.0
    for b in range(bins):
        in_bin = ids == b
        if in_bin.any():
            total += in_bin.mean() * abs(p[in_bin].mean() - y[in_bin].mean())
    return float(total)


def bt_ece(margins: np.ndarray, bins: int = 10) -> float:
    """ECE of the Bradley-Terry probability P(chosen > rejected) = sigmoid(margin).

    Every pair is shown in both orders (p with outcome 1, 1-p with outcome 0) so the outcome is
    not constant; then `ece` with 10 equal-width bins on [0, 1] (see `ECE_DEFINITION`).
    """
    p = sigmoid(np.asarray(margins, dtype=float))
    probs = np.concatenate([p, 1 - p])
    labels = np.concatenate([np.ones_like(p), np.zeros_like(p)])
    return ece(probs, labels, bins)


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(xa) < 2 or xa.std() == 0 or ya.std() == 0:
        return 0.0
    return float(np.corrcoef(xa, ya)[0, 1])


def perplexity(loss: float) -> float:
    return float(math.exp(min(loss, 50.0)))
