"""Statistics of a sweep: per-metric summaries across seeds and paired deltas against a baseline.

For each (version, metric): n seeds, mean, sample standard deviation (ddof=1) and the 95%
Student-t confidence interval of the mean. For each version against the named baseline, paired by
seed: the mean difference, its t interval, the paired t-test p-value (two-sided), and a seeded
percentile bootstrap of the mean difference with its two-sided bootstrap p-value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

CONFIDENCE = 0.95
#: fewer paired seeds than this give no bootstrap figures: with 2-4 values the resampled means
#: almost never cross zero and the bootstrap p-value is far too small (use the t-test)
MIN_BOOT = 5


def _finite(values: Sequence[float | None]) -> np.ndarray:
    arr = np.asarray([np.nan if v is None else float(v) for v in values], dtype=float)
    return arr[np.isfinite(arr)]


def _num(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def summarize(values: Sequence[float | None], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """n, mean, sd and the t confidence interval of the mean (None where undefined, e.g. n < 2)."""
    from scipy import stats

    arr = _finite(values)
    n = int(arr.size)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "ci_low": None, "ci_high": None}
    mean = float(arr.mean())
    if n < 2:
        return {"n": 1, "mean": mean, "sd": None, "ci_low": None, "ci_high": None}
    sd = float(arr.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half}


def paired_t(diffs: np.ndarray) -> float | None:
    """Two-sided p-value of the paired t-test on the differences (H0: mean difference is 0)."""
    from scipy import stats

    n = diffs.size
    if n < 2:
        return None
    sd = float(diffs.std(ddof=1))
    mean = float(diffs.mean())
    if sd == 0.0:
        return 1.0 if mean == 0.0 else 0.0
    t = mean / (sd / math.sqrt(n))
    return float(2.0 * stats.t.sf(abs(t), n - 1))


def bootstrap_mean(
    diffs: np.ndarray, *, n_boot: int = 10_000, seed: int = 0, confidence: float = CONFIDENCE
) -> dict[str, float | None]:
    """Percentile bootstrap CI of the mean difference and its two-sided bootstrap p-value.

    None for fewer than `MIN_BOOT` values.
    The p-value is twice the smaller share of resampled means on either side of zero (with the
    usual +1 correction so it is never exactly 0).
    """
    n = diffs.size
    if n < MIN_BOOT:
        return {"ci_low": None, "ci_high": None, "p": None}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    means = diffs[idx].mean(axis=1)
    alpha = 1.0 - confidence
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    if np.all(diffs == diffs[0]):
        p = 1.0 if diffs[0] == 0 else 0.0
    else:
        below = (np.sum(means <= 0) + 1) / (n_boot + 1)
        above = (np.sum(means >= 0) + 1) / (n_boot + 1)
        p = float(min(1.0, 2 * min(below, above)))
    return {"ci_low": float(lo), "ci_high": float(hi), "p": p}


def paired_delta(
    values: dict[int, float | None],
    baseline: dict[int, float | None],
    *,
    n_boot: int = 10_000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """Delta (version - baseline) over the seeds both have, with paired t and bootstrap tests."""
    from scipy import stats

    pairs: list[tuple[float, float]] = []
    for s in sorted(values):
        v, b = values[s], baseline.get(s)
        if v is not None and b is not None and math.isfinite(float(v)) and math.isfinite(float(b)):
            pairs.append((float(v), float(b)))
    diffs = np.asarray([v - b for v, b in pairs], dtype=np.float64)
    n = int(diffs.size)
    out: dict[str, Any] = {"n_pairs": n, "delta": _num(float(diffs.mean())) if n else None}
    out["delta_ci_low"] = out["delta_ci_high"] = None
    if n >= 2:
        sd = float(diffs.std(ddof=1))
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
        out["delta_ci_low"] = float(diffs.mean()) - half
        out["delta_ci_high"] = float(diffs.mean()) + half
    out["p_ttest"] = paired_t(diffs)
    boot = bootstrap_mean(diffs, n_boot=n_boot, seed=seed, confidence=confidence)
    out["boot_ci_low"] = boot["ci_low"]
    out["boot_ci_high"] = boot["ci_high"]
    out["p_bootstrap"] = boot["p"]
    return out


def summary_table(
    per_seed: dict[str, dict[str, dict[int, float | None]]],
    *,
    metrics: Sequence[str],
    baseline: str | None,
    n_boot: int = 10_000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Rows (version, metric, n, mean, sd, ci_low, ci_high, delta..., p_ttest, p_bootstrap).

    `per_seed[version][metric][seed]` holds one value per seed; versions keep their order.
    """
    rows: list[dict[str, Any]] = []
    for version, by_metric in per_seed.items():
        for metric in metrics:
            vals = by_metric.get(metric, {})
            row: dict[str, Any] = {"version": version, "metric": metric}
            row.update(summarize([vals[s] for s in sorted(vals)]))
            if baseline is not None and baseline in per_seed and version != baseline:
                base = per_seed[baseline].get(metric, {})
                row.update(paired_delta(vals, base, n_boot=n_boot, seed=seed))
            rows.append(row)
    return rows
