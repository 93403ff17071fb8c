"""Discretisation of a table on a public domain, and decoding back within it.

Each column gets a finite set of cells, fixed before any private row is read:

- categorical: the public `categories` (in the order given) plus one cell for null; a value outside
  the public domain is counted in the null cell (it is treated as missing);
- continuous: `bins` equal-width bins between the public `bounds` (an integer column whose range
  has at most `bins` values gets one cell per integer), plus a null cell; values outside the
  bounds are clipped into the first or last bin.

Bounds may instead be learned with DP from a declared part of the budget (`domain_fraction`),
charged in the ledger: a Gaussian noisy histogram over signed powers of two (tamis' DP-CTGAN
mechanism `dp.stats._dp_bounds`). Category domains are never learned from private rows here.

Decoding is post-processing: a continuous cell decodes to a uniform draw inside its bin (rounded
for integer columns), always inside the bounds; a categorical cell to its category; the null cell to
null.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

from tamis.errors import PrivacyError
from tamis.privacy.budget import check_metadata_columns
from tamis.privacy.dp_marginal.zcdp import ZCDPLedger

__all__ = ["ColumnDomain", "build_domains", "decode", "encode"]


@dataclass
class ColumnDomain:
    """The public cells of one column (the last cell is null)."""

    name: str
    kind: str  # "categorical" | "continuous"
    dtype: str  # the input column's polars dtype, kept for decoding
    categories: list[Any] | None = None
    edges: list[float] | None = None
    bounds: tuple[float, float] | None = None
    integer: bool = False
    #: "public" (metadata or schema) or "dp" (learned from the budget, charged in the ledger)
    source: str = "public"

    @property
    def cells(self) -> int:
        inner = len(self.categories) if self.categories is not None else len(self.edges or []) - 1
        return inner + 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cells"] = self.cells
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnDomain:
        d = {k: v for k, v in d.items() if k != "cells"}
        if d.get("bounds") is not None:
            d["bounds"] = tuple(d["bounds"])
        return cls(**d)


def _dtype(name: str) -> pl.DataType:
    base = name.split("(")[0]
    dt = getattr(pl, base, None)
    return dt() if isinstance(dt, type) else (dt if dt is not None else pl.String())


def _meta_get(meta: Any, key: str) -> Any:
    if meta is None:
        return None
    if isinstance(meta, dict):
        return meta.get(key)
    return getattr(meta, key, None)


def _edges(lo: float, hi: float, bins: int, integer: bool) -> list[float]:
    if integer and hi - lo + 1 <= bins:
        return [v - 0.5 for v in range(int(lo), int(hi) + 2)]
    if hi <= lo:
        hi = lo + 1.0
    return [float(x) for x in np.linspace(lo, hi, bins + 1)]


def _check_settings(
    df: pl.DataFrame, columns: dict[str, Any], bins: int, domain_fraction: float
) -> None:
    check_metadata_columns(columns, df.columns, PrivacyError)
    if not (0.0 <= domain_fraction < 1.0):
        raise PrivacyError(
            f"domain_fraction={domain_fraction!r} must be in [0, 1)",
            field="domain_fraction",
            fix="set domain_fraction to 0 (all bounds public) or e.g. 0.1",
        )
    if bins < 2:
        raise PrivacyError(f"bins={bins} must be >= 2", field="bins", fix="set bins to e.g. 32")


def _categorical_domain(c: str, dtype: pl.DataType, cats: Any) -> ColumnDomain:
    """A categorical column's public domain (booleans: False, True); never read from the rows."""
    if cats is None and dtype == pl.Boolean:
        cats = [False, True]
    if cats is None:
        raise PrivacyError(
            f"column '{c}' has no public category domain: reading it from the private"
            " rows would release values held by single rows",
            field=f"columns.{c}.categories",
            fix=f"give the public categories of '{c}' in the step's `columns` metadata"
            " (e.g. from the data dictionary), or drop the column",
        )
    if len(set(map(str, cats))) != len(cats):
        raise PrivacyError(
            f"column '{c}': the public categories repeat a value",
            field=f"columns.{c}.categories",
            fix="list each category once",
        )
    return ColumnDomain(c, "categorical", str(dtype), categories=list(cats))


def _continuous_domain(c: str, dtype: pl.DataType, bounds: Any, bins: int) -> ColumnDomain:
    """A numeric column's public bins; without public bounds, a domain to learn with DP."""
    if not dtype.is_numeric():
        raise PrivacyError(
            f"column '{c}' is declared continuous but has dtype {dtype}",
            field=f"columns.{c}.type",
            fix="declare it categorical with its categories, or cast it to a number",
        )
    integer = dtype.is_integer()
    if bounds is None:
        return ColumnDomain(c, "continuous", str(dtype), integer=integer, source="dp")
    lo, hi = float(bounds[0]), float(bounds[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise PrivacyError(
            f"column '{c}': bounds {list(bounds)} must be finite with low < high",
            field=f"columns.{c}.bounds",
            fix="give [low, high] with low < high",
        )
    if integer:
        lo, hi = math.floor(lo), math.ceil(hi)
    return ColumnDomain(
        c,
        "continuous",
        str(dtype),
        edges=_edges(lo, hi, bins, integer),
        bounds=(lo, hi),
        integer=integer,
    )


def _learn_bounds(
    df: pl.DataFrame,
    learn: list[str],
    out: dict[str, ColumnDomain],
    bins: int,
    ledger: ZCDPLedger,
    domain_fraction: float,
    rng: np.random.Generator,
) -> None:
    """Bounds of the columns in `learn` with the Gaussian mechanism, charged to `ledger`."""
    if domain_fraction <= 0:
        raise PrivacyError(
            f"no public bounds for {', '.join(learn)}: learning them from the private rows"
            " needs a share of the budget, and domain_fraction is 0",
            field=f"columns.{learn[0]}.bounds",
            fix="give public bounds for these columns in `columns` metadata, or set"
            " domain_fraction (e.g. 0.1) to learn them with DP (charged in the ledger)",
        )
    from tamis.privacy.dp.stats import _dp_bounds

    rho = domain_fraction * ledger.target_rho
    sigma = math.sqrt(len(learn) / (2.0 * rho))
    for c in learn:
        x = df[c].drop_nulls().cast(pl.Float64).to_numpy()
        x = x[np.isfinite(x)]
        ledger.gaussian(
            f"bounds:{c}",
            sigma,
            column=c,
            cells=163,
            note="noisy histogram over signed powers of two; the outermost buckets above the"
            " cut give the range (dp.stats._dp_bounds)",
        )
        lo, hi = _dp_bounds(x, sigma, rng)
        d = out[c]
        if d.integer:  # the half-open power-of-two range [lo, hi) as integers
            lo = math.floor(lo)
            hi = max(math.ceil(hi) - 1, lo + 1)
        d.bounds = (float(lo), float(hi))
        d.edges = _edges(lo, hi, bins, d.integer)


def build_domains(
    df: pl.DataFrame,
    columns: dict[str, Any],
    bins: int,
    ledger: ZCDPLedger,
    domain_fraction: float,
    rng: np.random.Generator,
) -> dict[str, ColumnDomain]:
    """Public cells for every column; bounds not given are learned with DP only if budgeted."""
    _check_settings(df, columns, bins, domain_fraction)
    out: dict[str, ColumnDomain] = {}
    for c in df.columns:
        meta = columns.get(c)
        dtype = df.schema[c]
        kind = _meta_get(meta, "type") or ("continuous" if dtype.is_numeric() else "categorical")
        if kind == "categorical":
            out[c] = _categorical_domain(c, dtype, _meta_get(meta, "categories"))
        else:
            out[c] = _continuous_domain(c, dtype, _meta_get(meta, "bounds"), bins)
    learn = [c for c, d in out.items() if d.source == "dp"]
    if learn:
        _learn_bounds(df, learn, out, bins, ledger, domain_fraction, rng)
    return out


def encode(df: pl.DataFrame, domains: dict[str, ColumnDomain]) -> dict[str, np.ndarray]:
    """Cell index of every value (the only function here that reads private rows)."""
    codes: dict[str, np.ndarray] = {}
    for c, d in domains.items():
        s = df[c]
        null = d.cells - 1
        if d.kind == "categorical":
            index = {str(v): i for i, v in enumerate(d.categories or [])}
            vals = s.cast(pl.String).to_list()
            codes[c] = np.array(
                [null if v is None else index.get(v, null) for v in vals], dtype=np.int64
            )
        else:
            x = s.cast(pl.Float64).to_numpy()
            edges = np.asarray(d.edges, dtype=np.float64)
            nb = len(edges) - 1
            idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, nb - 1)
            codes[c] = np.where(np.isfinite(x), idx, null).astype(np.int64)
    return codes


def decode(
    codes: dict[str, np.ndarray], domains: dict[str, ColumnDomain], rng: np.random.Generator
) -> pl.DataFrame:
    """Values from cell indices (post-processing): inside the bounds / domain, or null."""
    cols = []
    for c, d in domains.items():
        k = np.asarray(codes[c], dtype=np.int64)
        null = k == d.cells - 1
        dtype = _dtype(d.dtype)
        if d.kind == "categorical":
            table = np.array([*(d.categories or []), None], dtype=object)
            s = pl.Series(c, table[k].tolist())
            with contextlib.suppress(Exception):  # else keep the public values as given
                s = s.cast(dtype)
        else:
            assert d.edges is not None and d.bounds is not None
            edges = np.asarray(d.edges, dtype=np.float64)
            kk = np.where(null, 0, k)
            x = edges[kk] + rng.random(len(k)) * (edges[kk + 1] - edges[kk])
            lo, hi = d.bounds
            x = np.clip(x, lo, hi)
            if d.integer:
                x = np.clip(np.round(x), math.ceil(lo), math.floor(hi))
            s = pl.Series(c, x).cast(dtype)
            s = pl.select(pl.when(pl.Series(null)).then(None).otherwise(s).alias(c)).to_series()
        cols.append(s)
    return pl.DataFrame(cols)
