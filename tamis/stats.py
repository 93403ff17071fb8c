"""The one home for the interval statistics used across packages.

- `wilson`: Wilson score interval of a proportion k/n.
- `t_half_width` / `t_interval`: the Student-t interval of a mean (mean +- t * sd / sqrt(n)).
- `bootstrap_indices`, `percentile_interval`, `bootstrap_ci`: the percentile bootstrap. Every
  replicate draws `rng.integers(0, n, n)` from `numpy.random.default_rng(seed)`, one replicate after
  the other (the same stream as one `integers(0, n, size=(n_boot, n))` call), so the figures of a
  seed never depend on which of these functions computed them.
- `bootstrap_mean`: the percentile bootstrap CI of a mean (of paired differences, say) with its
  two-sided bootstrap p-value against zero (`bootstrap_p`, also for other replicates).

Quantiles are numpy's default (linear interpolation), as `scipy.stats.bootstrap(method="percentile")`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

#: the 2.5% and 97.5% quantiles: a 95% two-sided percentile interval
Q95 = (0.025, 0.975)


def wilson(
    k: float, n: int, z: float = 1.96, *, empty: tuple[float, float] = (0.0, 1.0)
) -> tuple[float, float]:
    """Wilson score interval of the proportion k/n (95% for z=1.96), clipped to [0, 1].

    `empty` is returned when n == 0 (the uninformative [0, 1] by default).
    """
    if n == 0:
        return empty
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def t_half_width(sd: float, n: int, confidence: float = 0.95) -> float:
    """Half width t_{(1+confidence)/2, n-1} * sd / sqrt(n) of the Student-t interval (n >= 2)."""
    from scipy import stats

    return float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)


def t_interval(
    values: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> tuple[float, float]:
    """Student-t interval of the mean of `values` (sd with ddof=1); (nan, nan) for n < 2."""
    arr = np.asarray(values, dtype=float)
    n = int(arr.size)
    if n < 2:
        return float("nan"), float("nan")
    mean = float(arr.mean())
    half = t_half_width(float(arr.std(ddof=1)), n, confidence)
    return mean - half, mean + half


def tails(level: float) -> tuple[float, float]:
    """The two quantiles ((1 - level) / 2, 1 - (1 - level) / 2) of a two-sided interval."""
    a = (1 - level) / 2
    return a, 1 - a


def bootstrap_indices(n: int, n_boot: int, seed: int = 0) -> Iterator[np.ndarray]:
    """`n_boot` resamples of row positions 0..n-1 with replacement, one replicate at a time."""
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield rng.integers(0, n, n)


def percentile_interval(
    replicates: Sequence[float] | np.ndarray,
    q: tuple[float, float] = Q95,
    *,
    finite_only: bool = False,
) -> tuple[float, float]:
    """The (q[0], q[1]) quantiles of bootstrap replicates; `finite_only` drops NaN/inf first.

    (nan, nan) when no replicate is left.
    """
    arr = np.asarray(replicates, dtype=float)
    if finite_only:
        arr = arr[np.isfinite(arr)]
    if not arr.size:
        return float("nan"), float("nan")
    return float(np.quantile(arr, q[0])), float(np.quantile(arr, q[1]))


def bootstrap_ci(
    values: Any,
    stat: Callable[[Any], Any],
    *,
    n_boot: int = 200,
    seed: int = 0,
    q: tuple[float, float] = Q95,
    finite_only: bool = False,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `stat` over rows of `values` (an array or a frame
    indexable by an integer array); (nan, nan) when n_boot <= 0, fewer than 2 rows or no
    (finite) replicate."""
    n = len(values)
    if n_boot <= 0 or n < 2:
        return float("nan"), float("nan")
    boots = [float(stat(values[idx])) for idx in bootstrap_indices(n, n_boot, seed)]
    return percentile_interval(boots, q, finite_only=finite_only)


def bootstrap_mean(
    values: np.ndarray, *, n_boot: int = 10_000, seed: int = 0, confidence: float = 0.95
) -> dict[str, float]:
    """Percentile bootstrap CI of the mean of `values` (e.g. paired differences) and its two-sided
    bootstrap p-value against zero: twice the smaller share of resampled means on either side of
    zero, with the usual +1 correction so it is never exactly 0 (constant values: p is 1 when they
    are all 0, else 0). Needs at least one value."""
    values = np.asarray(values, dtype=float)
    n = values.size
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    alpha = 1.0 - confidence
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    constant = bool(np.all(values == values[0]))
    p = (1.0 if values[0] == 0 else 0.0) if constant else bootstrap_p(means)
    return {"ci_low": float(lo), "ci_high": float(hi), "p": p}


def bootstrap_p(replicates: np.ndarray) -> float:
    """Two-sided bootstrap p-value against zero: twice the smaller share of replicates on either
    side of zero (ties count on both sides), with the +1 correction so it is never 0."""
    r = np.asarray(replicates, dtype=float)
    below = (np.sum(r <= 0) + 1) / (r.size + 1)
    above = (np.sum(r >= 0) + 1) / (r.size + 1)
    return float(min(1.0, 2 * min(below, above)))
