"""A shared numeric space for distance-based privacy metrics (float32, fitted on the real data).

- numeric columns: centred by the real median, divided by the real IQR/1.349 (a robust std; the
  std when the IQR is 0), clipped to +-10; a missing value becomes the median plus an indicator;
- other columns: one-hot of the real categories (top `max_categories`), scaled by 1/sqrt(2) so two
  different categories are at distance 1, like a one-std numeric difference; unseen values and
  nulls get their own indicator.

Every real, holdout and synthetic frame is encoded with the encoder fitted on the real training
data, so distances are comparable across them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tamis.errors import DataError

_SCALE = np.float32(1.0 / np.sqrt(2.0))


def _is_numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype == pl.Boolean


def align(real: pl.DataFrame, other: pl.DataFrame, name: str) -> pl.DataFrame:
    """`other` with the real data's columns in the real order, cast to the real dtypes."""
    missing = [c for c in real.columns if c not in other.columns]
    if missing:
        raise DataError(
            f"the {name} data lacks columns of the real data: {', '.join(missing)}",
            column=missing[0],
            fix=f"give the {name} data the same columns as the real data",
        )
    out = other.select(real.columns)
    casts = []
    for col, dtype in real.schema.items():
        if out.schema[col] != dtype:
            if _is_numeric(dtype):
                src = out.schema[col]
                e = pl.col(col)
                if isinstance(src, (pl.Categorical, pl.Enum)) or src == pl.Utf8:
                    # Polars cannot cast a categorical to a number: through its text
                    e = e.cast(pl.Utf8).str.strip_chars()
                casts.append(e.cast(pl.Float64, strict=False))
            else:
                casts.append(pl.col(col).cast(pl.Utf8, strict=False))
    return out.with_columns(casts) if casts else out


@dataclass
class Encoder:
    numeric: dict[str, tuple[float, float]] = field(default_factory=dict)
    categorical: dict[str, list[str]] = field(default_factory=dict)
    has_null: dict[str, bool] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)

    @classmethod
    def fit(
        cls, real: pl.DataFrame, columns: list[str] | None = None, max_categories: int = 100
    ) -> Encoder:
        enc = cls(columns=list(columns or real.columns))
        for col in enc.columns:
            if col not in real.columns:
                raise DataError("column not in the real data", column=col)
            s = real[col]
            if isinstance(s.dtype, (pl.List, pl.Struct, pl.Array, pl.Object, pl.Binary)):
                raise DataError(
                    f"unsupported column type {s.dtype} for distance metrics",
                    column=col,
                    fix="flatten, cast to string, or drop the column",
                )
            if _is_numeric(s.dtype):
                x = s.cast(pl.Float64).drop_nulls().drop_nans()
                if x.len() == 0:
                    med, scale = 0.0, 1.0
                else:
                    arr = x.to_numpy()
                    med = float(np.median(arr))
                    q1, q3 = np.quantile(arr, [0.25, 0.75])
                    scale = float(q3 - q1) / 1.349
                    if scale <= 0:
                        scale = float(arr.std()) or 1.0
                enc.numeric[col] = (med, scale)
                enc.has_null[col] = s.null_count() > 0
            else:
                # ties in frequency broken by value, never by row order
                vc = (
                    s.cast(pl.Utf8)
                    .drop_nulls()
                    .value_counts(name="n")
                    .sort(["n", col], descending=[True, False])
                    .head(max_categories)
                )
                enc.categorical[col] = [str(v) for v in vc[col].to_list()]
        return enc

    @property
    def width(self) -> int:
        w = 0
        for col in self.columns:
            if col in self.numeric:
                w += 1 + int(self.has_null[col])
            else:
                w += len(self.categorical[col]) + 1
        return w

    def transform(self, frame: pl.DataFrame) -> np.ndarray:
        n = frame.height
        out = np.zeros((n, self.width), dtype=np.float32)
        j = 0
        for col in self.columns:
            s = frame[col]
            if col in self.numeric:
                med, scale = self.numeric[col]
                x = s.cast(pl.Float64, strict=False).fill_nan(None).to_numpy()
                x = np.asarray(x, dtype=np.float64)
                null = np.isnan(x)
                z = np.clip((np.where(null, med, x) - med) / scale, -10, 10)
                out[:, j] = z.astype(np.float32)
                j += 1
                if self.has_null[col]:
                    out[:, j] = null.astype(np.float32) * _SCALE
                    j += 1
            else:
                cats = self.categorical[col]
                lookup = pl.DataFrame(
                    {"__v": cats, "__i": np.arange(len(cats), dtype=np.int64)},
                    schema={"__v": pl.Utf8, "__i": pl.Int64},
                )
                codes = (
                    pl.DataFrame({"__v": s.cast(pl.Utf8, strict=False)})
                    .join(lookup, on="__v", how="left", maintain_order="left")["__i"]
                    .fill_null(len(cats))
                    .to_numpy()
                )
                out[np.arange(n), j + codes] = _SCALE
                j += len(cats) + 1
        return out
