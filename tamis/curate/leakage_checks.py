"""The row checks of `find_leakage` against one eval set: exact key matches (and conflicting
labels), shared groups, and rows later than the eval set's start. Each returns its report section
and the leaked input rows; text checks (n-gram contamination, near overlap) live in
`contamination.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from tamis.curate.dedup.keys import normalized_key_exprs
from tamis.curate.label_column import null_label_mask
from tamis.errors import DataError

_R = "__tamis_row"
_E = "__tamis_eval_row"


def check_column(df: pl.DataFrame, col: str, side: str, field: str) -> None:
    if col not in df.columns:
        raise DataError(
            f"column not found in the {side}",
            column=col,
            field=field,
            fix=f"choose from: {', '.join(df.columns)}",
        )
    if df.height and df[col].null_count() == df.height:
        raise DataError(f"column is entirely null in the {side}", column=col, field=field)


def common_dtypes(
    left: pl.DataFrame, right: pl.DataFrame, cols: Sequence[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Make `cols` comparable across two frames: equal dtypes stay, numbers meet as Float64,
    anything else as strings (so a value that does not parse never turns into a matching null)."""
    lcast, rcast = [], []
    for c in cols:
        lt, rt = left.schema[c], right.schema[c]
        if lt == rt:
            continue
        target = pl.Float64 if lt.is_numeric() and rt.is_numeric() else pl.String
        lcast.append(pl.col(c).cast(target))
        rcast.append(pl.col(c).cast(target))
    return left.with_columns(lcast), right.with_columns(rcast)


def exact_matches(
    df: pl.DataFrame,
    ev: pl.DataFrame,
    cols: list[str],
    ops: Sequence[str],
    round_floats: int | None,
    label: str | None,
    max_rows: int,
) -> tuple[dict[str, Any], np.ndarray, pl.DataFrame, np.ndarray, pl.DataFrame]:
    schema = df.schema
    left = df.select(normalized_key_exprs(schema, cols, ops, round_floats)).with_row_index(_R)
    right = ev.select(normalized_key_exprs(ev.schema, cols, ops, round_floats)).with_row_index(_E)
    left, right = common_dtypes(left, right, cols)
    if label is not None:
        left = left.with_columns(df[label].alias("__label"))
        right = right.with_columns(ev[label].alias("__label"))
        left, right = common_dtypes(left, right, ["__label"])
    train_hit = left.join(right, on=cols, how="semi", nulls_equal=True)[_R].to_numpy()
    eval_hit = right.join(left, on=cols, how="semi", nulls_equal=True)[_E].to_numpy()
    pairs = left.join(right, on=cols, how="inner", nulls_equal=True)
    report: dict[str, Any] = {
        "columns": cols,
        "input_rows": int(train_hit.size),
        "eval_rows": int(eval_hit.size),
        "eval_share": eval_hit.size / ev.height if ev.height else 0.0,
    }
    conflict_rows = np.zeros(0, dtype=np.int64)
    conflicts = pl.DataFrame()
    if label is not None:
        # a null label is not a class: a pair with an unlabelled side is not a conflict
        bad = pairs.filter(
            pl.col("__label").is_not_null()
            & pl.col("__label_right").is_not_null()
            & pl.col("__label").ne(pl.col("__label_right"))
        )
        conflict_rows = bad[_R].unique().to_numpy()
        conflicts = bad.select(
            pl.col(_R).alias("row"),
            pl.col(_E).alias("eval_row"),
            pl.col("__label").cast(pl.String).alias("label"),
            pl.col("__label_right").cast(pl.String).alias("eval_label"),
        ).head(max_rows)
        report["conflicting_labels"] = {
            "input_rows": int(conflict_rows.size),
            "eval_rows": int(bad[_E].n_unique()),
            "null_labels_dropped": {
                "input": int(null_label_mask(df[label]).sum()),
                "eval": int(null_label_mask(ev[label]).sum()),
            },
        }
    table = pairs.select(pl.col(_R).alias("row"), pl.col(_E).alias("eval_row")).head(max_rows)
    return report, train_hit, table, conflict_rows, conflicts


def shared_groups(
    df: pl.DataFrame, ev: pl.DataFrame, col: str, max_rows: int
) -> tuple[dict[str, Any], np.ndarray, pl.DataFrame]:
    a, b = common_dtypes(df.select(pl.col(col)), ev.select(pl.col(col)), [col])
    a, b = a.with_row_index(_R), b.with_row_index(_E)
    shared = a.select(col).unique().join(b.select(col).unique(), on=col, how="inner")
    hit = a.join(shared, on=col, how="semi")[_R].to_numpy().astype(np.int64)
    eval_rows = b.join(shared, on=col, how="semi").height
    table = (
        a.join(shared, on=col, how="semi")
        .group_by(col)
        .agg(pl.len().alias("input_rows"))
        .join(
            b.join(shared, on=col, how="semi").group_by(col).agg(pl.len().alias("eval_rows")),
            on=col,
        )
        .sort(col)
        .head(max_rows)
    )
    report = {
        "column": col,
        "shared_groups": shared.height,
        "input_rows": int(hit.size),
        "eval_rows": int(eval_rows),
    }
    return report, hit, table


def later_than_eval(
    df: pl.DataFrame, ev: pl.DataFrame, col: str
) -> tuple[dict[str, Any], np.ndarray]:
    for frame, side in ((df, "input"), (ev, "eval set")):
        dt = frame.schema[col]
        if not (dt.is_temporal() or dt.is_numeric()):
            raise DataError(
                f"time column has dtype {dt} in the {side}, not a date/time or number",
                column=col,
                field="time",
                fix="parse it first (e.g. pl.col(...).str.to_datetime()) or name another column",
            )
    start = ev[col].cast(df.schema[col]).min()
    later = df.select((pl.col(col) > start).fill_null(False))[col].to_numpy()
    hit = np.nonzero(later)[0].astype(np.int64)
    report = {
        "column": col,
        "eval_start": str(start),
        "input_end": str(df[col].max()),
        "input_rows_after_eval_start": int(hit.size),
    }
    return report, hit
