"""DP statistics for DP-CTGAN preprocessing: every function that reads private values does so
through a Gaussian noisy histogram (L2 sensitivity 1) that its caller puts on the ledger."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy.stats import norm

from tamis.errors import DataError
from tamis.privacy.budget import check_metadata_columns
from tamis.privacy.ledger import Mechanism, PrivacyLedger

OTHER = "(other)"
NULL = "(null)"
GRID = 64
LOG_K = np.arange(-20, 61)  # magnitude buckets [2^k, 2^(k+1))


@dataclass
class ContinuousColumn:
    name: str
    dtype: str
    integer: bool
    #: mode edges, increasing; mode j covers [edges[j], edges[j+1]]
    edges: list[float]
    #: whether a null mode exists (public, or the noisy null count passed 3 sigma)
    has_null: bool
    bounds_source: str

    @property
    def width(self) -> int:
        return 1 + len(self.edges) - 1 + int(self.has_null)


@dataclass
class CategoricalColumn:
    name: str
    dtype: str
    categories: list[str]
    #: frequencies used to sample conditional vectors (noisy or uniform); never raw counts
    freqs: list[float]
    domain_source: str

    @property
    def width(self) -> int:
        return len(self.categories)


def _kind(name: str, dtype: pl.DataType, meta: dict[str, Any]) -> str:
    declared = meta.get("type") or meta.get("sdtype")
    if declared in ("continuous", "numerical"):
        if not dtype.is_numeric():
            raise DataError(
                f"declared continuous but its dtype is {dtype}",
                column=name,
                fix="cast the column to a number or declare type: categorical",
            )
        return "continuous"
    if declared in ("categorical", "boolean"):
        return "categorical"
    if declared is not None:
        raise DataError(
            f"unknown column type {declared!r}",
            column=name,
            fix="use type: continuous or type: categorical",
        )
    if "categories" in meta:
        return "categorical"
    if dtype.is_numeric() and dtype != pl.Boolean:
        return "continuous"
    if dtype in (pl.String, pl.Categorical, pl.Boolean) or isinstance(dtype, pl.Enum):
        return "categorical"
    raise DataError(
        f"dp_ctgan cannot model a column of type {dtype}",
        column=name,
        fix="cast it to a number or string in an earlier step, or drop it",
    )


def plan(df: pl.DataFrame, metadata: dict[str, Any], conditional: str) -> dict[str, list[str]]:
    """Which private histograms preprocessing needs (their count sets the noise)."""
    cols = metadata.get("columns", {}) or {}
    check_metadata_columns(cols, df.columns, DataError)
    out: dict[str, list[str]] = {}
    for name, dtype in df.schema.items():
        meta = cols.get(name, {}) or {}
        kind = _kind(name, dtype, meta)
        q: list[str] = []
        if kind == "categorical":
            if "categories" not in meta or conditional == "noisy":
                q.append("counts")
        else:
            if "bounds" not in meta:
                q.append("bounds")
            q.append("modes")
        out[name] = [kind, *q]
    return out


def _noisy(counts: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return counts.astype(np.float64) + rng.normal(0.0, sigma, size=counts.shape)


def _bucket(x: np.ndarray) -> np.ndarray:
    """Signed power-of-two bucket index: 0..80 negative (large..small), 81 zero, 82.. positive."""
    k = np.clip(np.floor(np.log2(np.maximum(np.abs(x), 1e-300))), LOG_K[0], LOG_K[-1]).astype(int)
    k = k - LOG_K[0]
    nk = len(LOG_K)
    return np.where(x == 0, nk, np.where(x > 0, nk + 1 + k, nk - 1 - k))


def _bucket_range(i: int) -> tuple[float, float]:
    nk = len(LOG_K)
    if i == nk:
        return 0.0, 0.0
    if i > nk:
        k = LOG_K[i - nk - 1]
        return float(2.0**k), float(2.0 ** (k + 1))
    k = LOG_K[nk - 1 - i]
    return float(-(2.0 ** (k + 1))), float(-(2.0**k))


def _dp_bounds(x: np.ndarray, sigma: float, rng: np.random.Generator) -> tuple[float, float]:
    counts = np.bincount(_bucket(x), minlength=2 * len(LOG_K) + 1)
    noisy = _noisy(counts, sigma, rng)
    # one spurious bucket far out (e.g. [2^45, 2^46) for ages) ruins the column, and with 163
    # buckets a 3-sigma cut lets one through in ~20 % of columns: the cut keeps the chance that
    # any empty bucket passes below 0.1 % (post-processing, no extra charge)
    keep = np.flatnonzero(noisy > sigma * max(3.0, float(norm.isf(1e-3 / len(counts)))))
    if len(keep) == 0:
        keep = np.array([int(np.argmax(noisy))])
    lo = _bucket_range(int(keep.min()))[0]
    hi = _bucket_range(int(keep.max()))[1]
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def _dp_modes(
    x: np.ndarray,
    null: np.ndarray,
    lo: float,
    hi: float,
    n_modes: int,
    sigma: float,
    rng: np.random.Generator,
) -> tuple[list[float], bool]:
    grid = np.linspace(lo, hi, GRID + 1)
    cell = np.clip(((np.clip(x, lo, hi) - lo) / (hi - lo) * GRID).astype(int), 0, GRID - 1)
    counts = np.bincount(cell[~null], minlength=GRID)
    noisy = np.clip(_noisy(np.append(counts, null.sum()), sigma, rng), 0, None)
    has_null = bool(noisy[-1] > 3.0 * sigma)
    cdf = np.cumsum(noisy[:-1])
    if cdf[-1] <= 0:
        return [lo, hi], has_null
    cdf = cdf / cdf[-1]
    cuts = [int(np.searchsorted(cdf, j / n_modes)) + 1 for j in range(1, n_modes)]
    edges = sorted({lo, hi, *[float(grid[min(c, GRID)]) for c in cuts]})
    return edges, has_null


def _str_values(s: pl.Series) -> np.ndarray:
    return s.cast(pl.String).fill_null(NULL).to_numpy().astype(object)


def _dtype(name: str) -> pl.DataType:
    table: dict[str, pl.DataType] = {
        "Int8": pl.Int8(),
        "Int16": pl.Int16(),
        "Int32": pl.Int32(),
        "Int64": pl.Int64(),
        "UInt8": pl.UInt8(),
        "UInt16": pl.UInt16(),
        "UInt32": pl.UInt32(),
        "UInt64": pl.UInt64(),
        "Float32": pl.Float32(),
        "Float64": pl.Float64(),
        "Boolean": pl.Boolean(),
    }
    return table.get(name, pl.String())


def _fit_categorical(
    name: str,
    s: pl.Series,
    meta: dict[str, Any],
    ledger: PrivacyLedger,
    sigma: float,
    conditional: str,
    delta_col: float,
    rng: np.random.Generator,
) -> CategoricalColumn:
    vals = _str_values(s)
    if "categories" in meta:
        cats = [NULL if v is None else str(v) for v in meta["categories"]]
        declared_null = NULL in cats
        # nulls are not values of the domain: they keep a cell of their own (never `(other)`),
        # learned like any category; `(other)` holds the values outside the public domain
        cats = [*dict.fromkeys(cats), *([] if NULL in cats else [NULL]), OTHER]
        source = "public metadata"
        if conditional == "noisy":
            lookup = {v: i for i, v in enumerate(cats)}
            codes = np.fromiter((lookup.get(v, len(cats) - 1) for v in vals), np.int64, len(vals))
            noisy = np.clip(_noisy(np.bincount(codes, minlength=len(cats)), sigma, rng), 0, None)
            # a public domain rarely has values outside it: an (other) count within 3 sigma of
            # zero is read as zero (post-processing), so noise alone does not make the model
            # generate (other) rows (sampling masks (other) anyway)
            if noisy[-1] < 3.0 * sigma:
                noisy[-1] = 0.0
            null_at = cats.index(NULL)
            if noisy[null_at] < 3.0 * sigma:  # likewise a null count within noise
                noisy[null_at] = 0.0
            ledger.add(
                Mechanism(
                    f"frequencies:{name}",
                    "gaussian",
                    sigma,
                    column=name,
                    note="noisy category counts over the public domain",
                )
            )
        else:
            # uniform over the declared domain; an undeclared null cell and (other) get no share
            noisy = np.array([float(c != OTHER and (c != NULL or declared_null)) for c in cats])
    else:
        if delta_col <= 0:
            raise DataError("learning a category domain needs a threshold delta > 0", column=name)
        keys, counts = np.unique(vals.astype(str), return_counts=True)
        noisy_all = _noisy(counts, sigma, rng)
        tau = 1.0 + sigma * float(norm.isf(delta_col))
        kept = noisy_all > tau
        cats = [str(k) for k in keys[kept]] + [OTHER]
        # n is public, so the (other) share is post-processing of the released counts
        noisy = np.append(noisy_all[kept], max(len(vals) - float(noisy_all[kept].sum()), 0.0))
        ledger.add(
            Mechanism(
                f"domain:{name}",
                "gaussian",
                sigma,
                delta_extra=delta_col,
                column=name,
                note=f"noisy counts of observed values, released above tau={tau:.1f}",
            )
        )
        source = "DP (thresholded noisy counts)"
        if conditional == "uniform":
            noisy = np.append(np.ones(len(cats) - 1), 0.0)
    freqs = noisy / noisy.sum() if noisy.sum() > 0 else np.full(len(cats), 1 / len(cats))
    return CategoricalColumn(name, str(s.dtype), cats, [float(f) for f in freqs], source)


def sigma_for(k: int, epsilon: float, ledger: PrivacyLedger) -> float:
    """Noise multiplier of each of k preprocessing histograms costing `epsilon` together."""
    return ledger.calibrate_histograms(k, epsilon) if k else math.inf
