"""The dtypes normalize's `cast:` names, and cast expressions that parse text to dates and say
which values fail (how many of how many, with examples)."""

from __future__ import annotations

from typing import Any

import polars as pl

from tamis.errors import StepError

DTYPES: dict[str, Any] = {
    "int": pl.Int64,
    "int64": pl.Int64,
    "int32": pl.Int32,
    "float": pl.Float64,
    "float64": pl.Float64,
    "float32": pl.Float32,
    "str": pl.String,
    "string": pl.String,
    "bool": pl.Boolean,
    "date": pl.Date,
    "datetime": pl.Datetime,
    "category": pl.Categorical,
}


def column_format(formats: str | dict[str, str] | None, col: str) -> str | None:
    """The strftime format of `col`: one for every column, or column -> format."""
    return formats.get(col) if isinstance(formats, dict) else formats


def cast_expr(col: str, dtype: str, current: Any, *, fmt: str | None, strict: bool) -> pl.Expr:
    """A cast expression; text to date/datetime is parsed (Polars 2 has no string cast for it)."""
    if dtype not in ("date", "datetime") or not (current.is_numeric() or current == pl.String):
        return pl.col(col).cast(DTYPES[dtype], strict=strict)
    text = pl.col(col)
    if current.is_numeric():
        # Polars reads numbers as days/microseconds since 1970 (age 39 -> 1970-01-01
        # 00:00:00.000039): a silent wrong value. Digits such as 20240105 are parsed as text.
        if fmt is None:
            raise StepError(
                f"cannot cast column '{col}' ({current}) to {dtype}: it holds numbers, which "
                "would be read as time since 1970",
                column=col,
                field="params.cast",
                fix=f"if '{col}' holds digits like 20240105, give `format:` (e.g. '%Y%m%d') to "
                "parse them as text; otherwise remove the cast",
            )
        text = text.cast(pl.String)
    if dtype == "date":
        return text.str.to_date(format=fmt, strict=strict)
    return text.str.to_datetime(format=fmt, strict=strict)


def failed_casts(
    lf: pl.LazyFrame, casts: dict[str, str], formats: str | dict[str, str] | None
) -> str | None:
    """Per cast column, how many non-null values do not cast, with examples (Polars' own message
    counts only part of them: 'for 1 out of 1 values' when three dates failed)."""
    schema = lf.collect_schema()
    parts = []
    for col, dtype in casts.items():
        fmt = column_format(formats, col)
        try:
            lenient = cast_expr(col, dtype, schema[col], fmt=fmt, strict=False)
            bad = (
                lf.select(pl.col(col).alias("v"), lenient.alias("c"))
                .filter(pl.col("v").is_not_null() & pl.col("c").is_null())
                .select(pl.col("v").cast(pl.String))
                .collect()
                .get_column("v")
            )
            total = int(lf.select(pl.col(col).is_not_null().sum()).collect().item())
        except (pl.exceptions.PolarsError, StepError):
            return None
        if bad.len():
            shown = ", ".join(repr(v) for v in bad.unique(maintain_order=True).head(3).to_list())
            parts.append(
                f"column '{col}' to {dtype}: {bad.len():,} of {total:,} non-null values do not "
                f"cast (e.g. {shown})"
            )
    return "; ".join(parts) or None
