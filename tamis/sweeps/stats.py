"""Statistics of a sweep: per-version figures with CIs and paired deltas against a baseline.

Figures a cell computes from its predictions on the fixed test set (classifier and TSTR recipes)
get the paired bootstrap over test rows and seeds of `resample.py`; `summary_table` takes its
figures where it has them. Figures without per-row predictions (audit figures, LM recipes) keep
the across-seed statistics of this module: the Student-t CI of the mean and the paired t-test of
the deltas (`ci_method` says which). The generic intervals come from `tamis.stats`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from tamis.stats import bootstrap_mean as mean_bootstrap
from tamis.stats import t_half_width

if TYPE_CHECKING:
    from tamis.sweeps.documents import TableRow

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
    arr = _finite(values)
    n = int(arr.size)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "ci_low": None, "ci_high": None}
    mean = float(arr.mean())
    if n < 2:
        return {"n": 1, "mean": mean, "sd": None, "ci_low": None, "ci_high": None}
    sd = float(arr.std(ddof=1))
    half = t_half_width(sd, n, confidence)
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
    if diffs.size < MIN_BOOT:
        return {"ci_low": None, "ci_high": None, "p": None}
    return dict(mean_bootstrap(diffs, n_boot=n_boot, seed=seed, confidence=confidence))


def paired_delta(
    values: dict[int, float | None],
    baseline: dict[int, float | None],
    *,
    n_boot: int = 10_000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """Delta (version - baseline) over the seeds both have, with paired t and bootstrap tests."""
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
        half = t_half_width(sd, n, confidence)
        out["delta_ci_low"] = float(diffs.mean()) - half
        out["delta_ci_high"] = float(diffs.mean()) + half
    out["p_ttest"] = paired_t(diffs)
    boot = bootstrap_mean(diffs, n_boot=n_boot, seed=seed, confidence=confidence)
    out["boot_ci_low"] = boot["ci_low"]
    out["boot_ci_high"] = boot["ci_high"]
    out["p_bootstrap"] = boot["p"]
    return out


#: figures bounded to [0, 1] (CIs clipped) and to [-1, 1]
BOUNDED_01 = {
    "accuracy",
    "precision",
    "recall",
    "f1",
    "auc",
    "average_precision",
    "minority_f1",
    "ece",
    "mia_auc",
    "mia_auc_distance",
    "mia_auc_domias",
    "exact_match_rate",
}
BOUNDED_11 = {"reward_length_corr"}
ROWS_METHOD = "bootstrap: test rows + seeds"
SEEDS_METHOD = "t: seeds"


def bounds_of(metric: str) -> tuple[float, float] | None:
    if metric in BOUNDED_01 or metric.endswith(("_auc", "_rate", "_accuracy", "_f1")):
        return (0.0, 1.0)
    if metric in BOUNDED_11 or metric.endswith("_corr"):
        return (-1.0, 1.0)
    return None


def clip(value: float | None, bounds: tuple[float, float] | None) -> float | None:
    if value is None or bounds is None:
        return value
    return float(min(max(value, bounds[0]), bounds[1]))


def summary_table(
    per_seed: dict[str, dict[str, dict[int, float | None]]],
    *,
    metrics: Sequence[str],
    baseline: str | None,
    n_boot: int = 2000,
    seed: int = 0,
    resampled: dict[tuple[str, str], dict[str, Any]] | None = None,
) -> list[TableRow]:
    """Rows: version, metric, n (seeds), mean, sd, ci_low, ci_high, ci_method, and against the
    baseline delta, delta_ci_low, delta_ci_high, p, p_method.

    `per_seed[version][metric][seed]` holds one value per seed; versions keep their order.
    Where `resampled` (from `resample_cells`) has a (version, metric), its CIs and p-value are
    used; otherwise the across-seed t statistics (`SEEDS_METHOD`).
    """
    resampled = resampled or {}
    rows: list[TableRow] = []
    for version, by_metric in per_seed.items():
        for metric in metrics:
            bounds = bounds_of(metric)
            vals = by_metric.get(metric, {})
            row: dict[str, Any] = {"version": version, "metric": metric}
            row.update(summarize([vals[s] for s in sorted(vals)]))
            row["ci_low"] = clip(row["ci_low"], bounds)
            row["ci_high"] = clip(row["ci_high"], bounds)
            row["ci_method"] = SEEDS_METHOD
            has_delta = baseline is not None and baseline in per_seed and version != baseline
            if has_delta:
                assert baseline is not None
                base = per_seed[baseline].get(metric, {})
                pd_ = paired_delta(vals, base, n_boot=n_boot, seed=seed)
                row.update(
                    n_pairs=pd_["n_pairs"],
                    delta=pd_["delta"],
                    delta_ci_low=pd_["delta_ci_low"],
                    delta_ci_high=pd_["delta_ci_high"],
                    p=pd_["p_ttest"],
                    p_method="paired t-test over seeds",
                )
            boot = resampled.get((version, metric))
            if boot is not None and row.get("mean") is not None:
                row.update({k: v for k, v in boot.items() if has_delta or "delta" not in k})
                if not has_delta:
                    row.pop("p", None)
                    row.pop("p_method", None)
            rows.append(cast("TableRow", row))
    return rows
