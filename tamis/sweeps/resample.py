"""The paired bootstrap over test rows and seeds (`resample_cells`).

Each replicate draws the seeds with replacement and the test rows with replacement (one row
index per test set and replicate, shared by every version), recomputes every version's figure
on those rows, and averages over the drawn seeds. The 95% CI of a version is the percentile
interval of its replicates (bounded figures stay within their bounds); the delta against the
baseline is computed inside each replicate, so its CI and two-sided bootstrap p-value are paired
by row and by seed. A deterministic model thus gets a CI of the test set's sampling error instead
of zero width, and a delta that a few test rows could flip is not significant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tamis.stats import bootstrap_p, percentile_interval, tails
from tamis.sweeps.stats import CONFIDENCE, ROWS_METHOD, bounds_of, clip


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
    """The bootstrap p-value of the finite replicates (`tamis.stats.bootstrap_p`); None if none."""
    d = deltas[np.isfinite(deltas)]
    return bootstrap_p(d) if d.size else None


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
    return clip(lo, bounds), clip(hi, bounds)


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
