"""Normalised comparison keys and column checks shared by dedup, near_dedup and leakage.

`resolve_normalize` reads the `normalize` param, `normalized_key_exprs` gives the value each column is
compared on (strings NFKC/stripped/case-folded, floats rounded with one NaN and one zero), and
`check_columns` / `check_text_column` resolve column params with clear errors.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from tamis.errors import DataError

NORMALIZE_OPS = ("strip", "casefold", "nfkc")


def resolve_normalize(normalize: bool | Sequence[str]) -> tuple[str, ...]:
    """`True` means all of strip/casefold/nfkc; `False` none; a list picks some (the configs'
    types allow only those names)."""
    if normalize is True:
        return NORMALIZE_OPS
    return tuple(normalize or ())


def normalized_key_exprs(
    schema: pl.Schema, columns: Sequence[str], ops: Sequence[str], round_floats: int | None
) -> list[pl.Expr]:
    """One expression per column giving the value used for comparison (same name as the column).

    Strings: optional NFKC, strip and case-fold (Unicode lower-casing). Floats: rounded to
    `round_floats` decimals, -0.0 made 0.0 and every NaN made one NaN. Other dtypes unchanged.
    """
    out = []
    for col in columns:
        dtype = schema[col]
        expr = pl.col(col)
        if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum):
            if dtype != pl.String:
                expr = expr.cast(pl.String)
            if "nfkc" in ops:
                expr = expr.str.normalize("NFKC")
            if "strip" in ops:
                expr = expr.str.strip_chars()
            if "casefold" in ops:
                expr = expr.str.to_lowercase()
        elif dtype.is_float():
            if round_floats is not None:
                expr = expr.round(round_floats)
            expr = pl.when(expr.is_nan()).then(float("nan")).otherwise(expr + 0.0)
        out.append(expr.alias(col))
    return out


def check_columns(
    df: pl.DataFrame | pl.LazyFrame | pl.Schema,
    columns: Sequence[str] | str | None,
    *,
    field: str = "columns",
    exclude: Sequence[str] = (),
) -> list[str]:
    """Resolve `columns` ('all'/None or a list) against a frame or schema; unknown names are errors."""
    names = df.names() if isinstance(df, pl.Schema) else df.collect_schema().names()
    if columns is None or columns == "all":
        cols = [c for c in names if c not in exclude]
    elif isinstance(columns, str):
        cols = [columns]
    else:
        cols = list(columns)
    if not cols:
        raise DataError("no columns to compare", field=field, fix="name some columns")
    for col in cols:
        if col not in names:
            raise DataError(
                "column not found in the input",
                column=col,
                field=field,
                fix=f"choose from: {', '.join(names)}",
            )
    return cols


def check_text_column(df: pl.DataFrame, column: str, *, field: str = "column") -> None:
    """The text column exists, holds strings and is not entirely null."""
    if column not in df.columns:
        raise DataError(
            "text column not found in the input",
            column=column,
            field=field,
            fix=f"choose from: {', '.join(df.columns)}",
        )
    dtype = df.schema[column]
    if not (dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)):
        raise DataError(
            f"text column has dtype {dtype}, not a string",
            column=column,
            field=field,
            fix="name a string column, or cast it first (e.g. a `normalize` step)",
        )
    if df.height and df[column].null_count() == df.height:
        raise DataError(
            "text column is entirely null",
            column=column,
            field=field,
            fix="name a column that holds text",
        )
