"""Statistics of a sweep: per-version figures with CIs and paired deltas against a baseline.

Figures a cell computes from its predictions on the fixed test set (classifier and TSTR recipes)
get a **paired bootstrap over test rows and seeds** (`resample_cells`): each replicate draws the
seeds with replacement and the test rows with replacement (one row index per test set and
replicate, shared by every version), recomputes every version's figure on those rows, and averages
over the drawn seeds. The 95% CI of a version is the percentile interval of its replicates
(bounded figures stay within their bounds); the delta against the baseline is computed inside
each replicate, so its CI and two-sided bootstrap p-value are paired by row and by seed. A
deterministic model thus gets a CI of the test set's sampling error instead of zero width, and a
delta that a few test rows could flip is not significant.

Figures without per-row predictions (audit figures, LM recipes) keep the across-seed statistics:
the Student-t CI of the mean and the paired t-test of the deltas (`ci_method` says which).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from tamis.stats import bootstrap_mean as mean_bootstrap
from tamis.stats import percentile_interval, t_half_width, tails

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


def _clip(value: float | None, bounds: tuple[float, float] | None) -> float | None:
    if value is None or bounds is None:
        return value
    return float(min(max(value, bounds[0]), bounds[1]))


def _counts(idx: np.ndarray, n: int, *, transposed: bool = False) -> np.ndarray:
    """How often each of 0..n-1 occurs in each row of idx: replicates x n (or n x replicates
    as float32 with `transposed`, the layout `weighted_metrics` works in)."""
    reps = idx.shape[0]
    flat = (idx + (np.arange(reps) * n)[:, None]).ravel()
    counts = np.bincount(flat, minlength=reps * n).reshape(reps, n)
    if transposed:
        return np.ascontiguousarray(counts.T, dtype=np.float32)
    return counts.astype(np.float64)


def _seed_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per replicate: the mean over drawn seeds (weights = how often drawn) of finite values."""
    ok = np.isfinite(values)
    w = np.where(ok, weights, 0.0)
    num = np.where(ok, values, 0.0)
    total = (w * num).sum(axis=1)
    den = w.sum(axis=1)
    out = np.full(values.shape[0], np.nan)
    np.divide(total, den, out=out, where=den > 0)
    return out


def _two_sided_p(deltas: np.ndarray) -> float | None:
    """Twice the smaller share of replicates on either side of zero (ties count on both sides),
    with the +1 correction, so it is never 0."""
    d = deltas[np.isfinite(deltas)]
    if d.size == 0:
        return None
    below = (np.sum(d <= 0) + 1) / (d.size + 1)
    above = (np.sum(d >= 0) + 1) / (d.size + 1)
    return float(min(1.0, 2 * min(below, above)))


def _usable(
    cells: dict[str, dict[int, Any]], test_of_seed: dict[int, str | None]
) -> tuple[dict[str, np.ndarray], dict[str, dict[int, Any]]]:
    """The row keys of each test set (as its first cell has them) and the cells whose keys match
    them: version -> seed -> cell (a cell scored on other rows is left out)."""
    ref_keys: dict[str, np.ndarray] = {}
    usable: dict[str, dict[int, Any]] = {}
    for version, by_seed in cells.items():
        for s, cell in by_seed.items():
            t = str(test_of_seed.get(s))
            keys = ref_keys.setdefault(t, cell.keys)
            if len(keys) == len(cell.keys) and np.array_equal(keys, cell.keys):
                usable.setdefault(version, {})[s] = cell
    return ref_keys, usable


def _replicates(
    usable: dict[str, dict[int, Any]],
    test_of_seed: dict[int, str | None],
    metrics: Sequence[str],
    sizes: dict[str, int],
    seeds: list[int],
    rng: np.random.Generator,
    n_boot: int,
) -> dict[tuple[str, str], np.ndarray]:
    """(version, metric) -> n_boot x seeds figures on the resampled test rows (NaN where a
    version lacks the seed); the row draws come from `rng`, chunk by chunk, test set by test set."""
    from tamis.sweeps.scoring import CHUNK_ELEMENTS, weighted_metrics

    k = len(seeds)
    reps: dict[tuple[str, str], np.ndarray] = {}
    for version, by_seed in usable.items():
        for m in metrics:
            cell0 = next(iter(by_seed.values()))
            if cell0.metric(m) is not None:
                reps[(version, m)] = np.full((n_boot, k), np.nan)
    fingerprints = {id(c): c.fingerprint() for by_seed in usable.values() for c in by_seed.values()}
    tests = sorted(sizes)
    chunk = max(1, CHUNK_ELEMENTS // max(1, max(sizes.values())))
    for lo in range(0, n_boot, chunk):
        hi = min(n_boot, lo + chunk)
        weights = {
            t: _counts(
                rng.integers(0, sizes[t], size=(hi - lo, sizes[t])), sizes[t], transposed=True
            )
            for t in tests
        }
        done: dict[tuple[str, str], dict[str, np.ndarray]] = {}
        for version, by_seed in usable.items():
            for s, cell in by_seed.items():
                test = str(test_of_seed.get(s))
                # identical predictions (a deterministic model on a fixed version) score once
                same = (fingerprints[id(cell)], test)
                if same not in done:
                    done[same] = weighted_metrics(cell, weights[test], transposed=True)
                scores = done[same]
                for m in metrics:
                    score = cell.metric(m)
                    if score is not None and (version, m) in reps:
                        reps[(version, m)][lo:hi, seeds.index(s)] = scores[score]
    return reps


def _interval(
    values: np.ndarray, q: tuple[float, float], bounds: tuple[float, float] | None
) -> tuple[float | None, float | None]:
    """The percentile interval of the finite replicates, clipped to `bounds`; None when none."""
    fin = values[np.isfinite(values)]
    if not fin.size:
        return None, None
    lo, hi = percentile_interval(fin, q)
    return _clip(lo, bounds), _clip(hi, bounds)


def _delta_figures(
    vals: np.ndarray,
    base: np.ndarray,
    seed_w: np.ndarray,
    q: tuple[float, float],
    bounds: tuple[float, float] | None,
) -> dict[str, Any]:
    """The delta against the baseline, inside each replicate: its CI and two-sided p-value."""
    d = _seed_mean(vals - base, seed_w)  # NaN where either lacks the seed (or the figure)
    span = None if bounds is None else (bounds[0] - bounds[1], bounds[1] - bounds[0])
    low, high = _interval(d, q, span)
    return {
        "delta_ci_low": low,
        "delta_ci_high": high,
        "p": _two_sided_p(d),
        "p_method": "paired bootstrap (rows + seeds), two-sided",
    }


def resample_cells(
    cells: dict[str, dict[int, Any]],
    test_of_seed: dict[int, str | None],
    metrics: Sequence[str],
    *,
    baseline: str | None,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> dict[tuple[str, str], dict[str, Any]]:
    """The paired bootstrap over test rows and seeds for the figures the predictions give.

    `cells[version][seed]` holds a `CellPredictions` (rows sorted by content key); every cell
    scored on the same test set must have the same keys. Draws, from `default_rng(seed)`: first
    the seeds (`integers(0, k, (n_boot, k))`, only when k > 1), then, in chunks of replicates,
    for each test set in id order the row indices (`integers(0, n, (chunk, n))`); with one seed
    and one test set this is `integers(0, n, (n_boot, n))`. Returns, per (version, metric):
    the CI of the version's figure and, against the baseline, the delta's CI and p-value.
    """
    seeds = sorted({s for by_seed in cells.values() for s in by_seed})
    if not seeds:
        return {}
    ref_keys, usable = _usable(cells, test_of_seed)
    sizes = {t: len(keys) for t, keys in ref_keys.items()}
    rng = np.random.default_rng(seed)
    k = len(seeds)
    draws = rng.integers(0, k, size=(n_boot, k)) if k > 1 else np.zeros((n_boot, 1), dtype=int)
    seed_w = _counts(draws, k)
    reps = _replicates(usable, test_of_seed, metrics, sizes, seeds, rng, n_boot)
    q = tails(confidence)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for (version, m), vals in reps.items():
        bounds = bounds_of(m)
        stat = _seed_mean(vals, seed_w)
        row: dict[str, Any] = {"ci_method": ROWS_METHOD, "n_boot": int(np.isfinite(stat).sum())}
        row["n_test_rows"] = sizes[str(test_of_seed.get(min(usable[version])))]
        row["ci_low"], row["ci_high"] = _interval(stat, q, bounds)
        if baseline is not None and version != baseline and (baseline, m) in reps:
            row.update(_delta_figures(vals, reps[(baseline, m)], seed_w, q, bounds))
        out[(version, m)] = row
    return out


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
            row["ci_low"] = _clip(row["ci_low"], bounds)
            row["ci_high"] = _clip(row["ci_high"], bounds)
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
