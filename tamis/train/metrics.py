"""Figures written per run: accuracies with Wilson CIs, calibration (ECE), correlations."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion (95% by default)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


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


def bt_ece(margins: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the Bradley-Terry probability P(chosen > rejected).

    Each pair is shown in both orders (p for the true order, 1-p for the swapped one) so the
    outcome is not constant; the ECE is the bin-weighted |confidence - accuracy| over the
    predicted class, as in Guo et al. (2017).
    """
    p = sigmoid(np.asarray(margins, dtype=float))
    probs = np.concatenate([p, 1 - p])
    labels = np.concatenate([np.ones_like(p), np.zeros_like(p)])
    conf = np.maximum(probs, 1 - probs)
    pred = (probs >= 0.5).astype(float)
    correct = (pred == labels).astype(float)
    edges = np.linspace(0.5, 1.0, bins + 1)
    ece = 0.0
    for i in range(bins):
        lo, hi = edges[i], edges[i + 1]
        in_bin = (conf >= lo) & ((conf < hi) if i < bins - 1 else (conf <= hi))
        if in_bin.any():
            ece += in_bin.mean() * abs(conf[in_bin].mean() - correct[in_bin].mean())
    return float(ece)


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(xa) < 2 or xa.std() == 0 or ya.std() == 0:
        return 0.0
    return float(np.corrcoef(xa, ya)[0, 1])


def perplexity(loss: float) -> float:
    return float(math.exp(min(loss, 50.0)))
