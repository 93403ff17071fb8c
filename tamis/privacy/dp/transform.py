"""DP-safe preprocessing for DP-CTGAN: every statistic of the private data is noised and charged.

What the model needs to know about the columns, and where it comes from:

- **column types and names**: the schema (public).
- **category domains**: from `metadata.columns.<c>.categories` (public), or learned by Gaussian
  noisy counts of the observed values, released only above a threshold `tau` (a value held by a
  single row survives with probability `delta_extra`, charged to the ledger). Values outside the
  domain become the category `(other)`.
- **category frequencies** for the conditional vector: the same noisy counts (learned domains), a
  noisy histogram over the public domain (`conditional: noisy`), or uniform (`conditional:
  uniform`, no charge).
- **continuous bounds**: from `metadata.columns.<c>.bounds` (public), or a Gaussian noisy
  histogram over signed powers of two whose outermost buckets above `3 sigma` give the range.
- **modes** (CTGAN's mode-specific normalisation, without a mixture fitted on raw data): a Gaussian
  noisy histogram on a 64-cell grid between the bounds, plus a null cell; `n_modes` quantiles of
  its noisy CDF are the mode edges; a value is encoded as its mode (one-hot) and its position in
  the mode scaled to [-1, 1].

Each histogram has L2 sensitivity 1 (one row changes one count by one). The fitted transformer
holds only these noisy, released statistics: it never keeps a private row.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

from tamis.errors import DataError
from tamis.privacy.dp.stats import (
    GRID,
    NULL,
    OTHER,
    CategoricalColumn,
    ContinuousColumn,
    _dp_bounds,
    _dp_modes,
    _dtype,
    _fit_categorical,
    _str_values,
    plan,
    sigma_for,
)
from tamis.privacy.ledger import Mechanism, PrivacyLedger

__all__ = [
    "GRID",
    "NULL",
    "OTHER",
    "CategoricalColumn",
    "ContinuousColumn",
    "DPTransformer",
    "plan",
    "sigma_for",
]


@dataclass
class DPTransformer:
    """Encodes rows for the GAN and decodes generator output; holds only released statistics."""

    continuous: list[ContinuousColumn]
    categorical: list[CategoricalColumn]
    order: list[str]

    # -- fitting (the only code that reads private data, all through charged mechanisms) --------
    @classmethod
    def fit(
        cls,
        df: pl.DataFrame,
        metadata: dict[str, Any],
        ledger: PrivacyLedger,
        *,
        sigma: float,
        conditional: str,
        n_modes: int,
        rng: np.random.Generator,
        threshold_delta: float = 0.0,
    ) -> DPTransformer:
        cols = metadata.get("columns", {}) or {}
        planned = plan(df, metadata, conditional)
        n_learned = sum(
            1
            for c, q in planned.items()
            if q[0] == "categorical" and "categories" not in (cols.get(c) or {})
        )
        per_col_delta = threshold_delta / max(n_learned, 1)
        conts: list[ContinuousColumn] = []
        cats: list[CategoricalColumn] = []
        for name, queries in planned.items():
            meta = cols.get(name, {}) or {}
            s = df.get_column(name)
            if queries[0] == "categorical":
                cats.append(
                    _fit_categorical(name, s, meta, ledger, sigma, conditional, per_col_delta, rng)
                )
                continue
            null = s.is_null().to_numpy() | s.cast(pl.Float64).is_nan().fill_null(False).to_numpy()
            x = s.cast(pl.Float64).fill_null(0.0).fill_nan(0.0).to_numpy()
            if "bounds" in meta:
                lo, hi = (float(v) for v in meta["bounds"])
                if not hi > lo:
                    raise DataError("bounds must be [low, high] with high > low", column=name)
                source = "public metadata"
            else:
                lo, hi = _dp_bounds(x[~null], sigma, rng)
                ledger.add(
                    Mechanism(
                        f"bounds:{name}",
                        "gaussian",
                        sigma,
                        column=name,
                        note="noisy power-of-two histogram, buckets above 3 sigma",
                    )
                )
                source = "DP (noisy power-of-two histogram)"
            edges, has_null = _dp_modes(x, null, lo, hi, n_modes, sigma, rng)
            ledger.add(
                Mechanism(
                    f"modes:{name}",
                    "gaussian",
                    sigma,
                    column=name,
                    note=f"noisy {GRID}-cell histogram + null cell; quantile mode edges",
                )
            )
            if "nullable" in meta:
                has_null = bool(meta["nullable"])
            conts.append(
                ContinuousColumn(name, str(s.dtype), s.dtype.is_integer(), edges, has_null, source)
            )
        return cls(conts, cats, list(df.columns))

    # -- layout -------------------------------------------------------------------------------
    def spans(self) -> list[tuple[str, int, int, str]]:
        """(column, start, width, activation) blocks of the encoded row, in encoding order."""
        out: list[tuple[str, int, int, str]] = []
        pos = 0
        for c in self.continuous:
            out.append((c.name, pos, 1, "tanh"))
            out.append((c.name, pos + 1, c.width - 1, "softmax"))
            pos += c.width
        for k in self.categorical:
            out.append((k.name, pos, k.width, "softmax"))
            pos += k.width
        return out

    @property
    def dim(self) -> int:
        return sum(c.width for c in self.continuous) + sum(k.width for k in self.categorical)

    def cond_offsets(self) -> list[int]:
        offs, pos = [], 0
        for k in self.categorical:
            offs.append(pos)
            pos += k.width
        return offs

    def other_mask(self) -> np.ndarray:
        """Positions of `(other)`, masked when sampling (post-processing): `(other)` is a
        placeholder for values outside the public or released domain, never a value to emit.
        A column whose domain is only `(other)` keeps it (it decodes to null)."""
        mask = np.zeros(self.dim, dtype=bool)
        pos = sum(c.width for c in self.continuous)
        for k in self.categorical:
            if OTHER in k.categories and len(k.categories) > 1:
                mask[pos + k.categories.index(OTHER)] = True
            pos += k.width
        return mask

    def sampling_freqs(self) -> list[list[float]]:
        """Conditional-vector frequencies for sampling: the released ones without `(other)`."""
        out = []
        for k in self.categorical:
            f = np.asarray(k.freqs, dtype=np.float64)
            if OTHER in k.categories and len(k.categories) > 1:
                f[k.categories.index(OTHER)] = 0.0
            out.append(list(f / f.sum()) if f.sum() > 0 else [1.0 / len(f)] * len(f))
        return out

    # -- encode / decode ----------------------------------------------------------------------
    def transform(self, df: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Encoded rows [n, dim] and each row's category index per categorical column (cond)."""
        n = df.height
        blocks: list[np.ndarray] = []
        for c in self.continuous:
            s = df.get_column(c.name)
            null = s.is_null().to_numpy() | s.cast(pl.Float64).is_nan().fill_null(False).to_numpy()
            x = s.cast(pl.Float64).fill_null(0.0).fill_nan(0.0).to_numpy()
            e = np.asarray(c.edges)
            x = np.clip(x, e[0], e[-1])
            k = np.clip(np.searchsorted(e, x, side="right") - 1, 0, len(e) - 2)
            width = e[k + 1] - e[k]
            alpha = np.where(width > 0, 2 * (x - e[k]) / np.where(width > 0, width, 1) - 1, 0.0)
            block = np.zeros((n, c.width), dtype=np.float32)
            block[:, 0] = np.where(null, 0.0, alpha)
            if c.has_null:
                k = np.where(null, len(e) - 1, k)
            block[np.arange(n), 1 + k] = 1.0
            blocks.append(block)
        idx = np.zeros((n, len(self.categorical)), dtype=np.int64)
        offs = self.cond_offsets()
        for j, cat in enumerate(self.categorical):
            lookup = {v: i for i, v in enumerate(cat.categories)}
            other = lookup.get(OTHER, 0)
            vals = _str_values(df.get_column(cat.name))
            codes = np.fromiter((lookup.get(v, other) for v in vals), dtype=np.int64, count=n)
            block = np.zeros((n, cat.width), dtype=np.float32)
            block[np.arange(n), codes] = 1.0
            blocks.append(block)
            idx[:, j] = offs[j] + codes
        return np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0), np.float32), idx

    def inverse(self, data: np.ndarray) -> pl.DataFrame:
        cols: dict[str, pl.Series] = {}
        pos = 0
        for c in self.continuous:
            alpha = np.clip(data[:, pos], -1, 1)
            modes = data[:, pos + 1 : pos + c.width].argmax(axis=1)
            e = np.asarray(c.edges)
            k = np.minimum(modes, len(e) - 2)
            x = e[k] + (alpha + 1) / 2 * (e[k + 1] - e[k])
            if c.integer:  # rounding stays within the bounds (public or released)
                lo, hi = math.ceil(e[0]), math.floor(e[-1])
                x = np.clip(np.round(x), lo, hi) if lo <= hi else np.round(x)
            s = pl.Series(c.name, x)
            if c.has_null:
                s = pl.select(
                    pl.when(pl.lit(modes == len(e) - 1)).then(None).otherwise(s)
                ).to_series()
            cols[c.name] = s.cast(_dtype(c.dtype), strict=False).alias(c.name)
            pos += c.width
        for cat in self.categorical:
            codes = data[:, pos : pos + cat.width].argmax(axis=1)
            vals = np.asarray(cat.categories, dtype=object)[codes]
            # `(other)` (only emitted when the domain is nothing else) decodes to null
            s = pl.Series(cat.name, vals, dtype=pl.String).replace([NULL, OTHER], None)
            cols[cat.name] = s.cast(_dtype(cat.dtype), strict=False).alias(cat.name)
            pos += cat.width
        return pl.DataFrame([cols[n] for n in self.order])

    # -- (de)serialisation: plain JSON, no pickle ---------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "continuous": [asdict(c) for c in self.continuous],
            "categorical": [asdict(k) for k in self.categorical],
            "order": list(self.order),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DPTransformer:
        return cls(
            [ContinuousColumn(**c) for c in d["continuous"]],
            [CategoricalColumn(**k) for k in d["categorical"]],
            list(d["order"]),
        )
