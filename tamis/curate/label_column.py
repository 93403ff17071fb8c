"""The label column, checked before any label step: dtype, nulls, classes, codes.

A label holds one class per row (numbers, strings or booleans; never lists, structs or objects).
A null (or NaN) label is not a class: kept, it would silently become one more class (one blank
row turns a binary label into a three-class problem and shifts every AUC and noise estimate), so
label steps drop those rows first and count them (`drop_null_labels`).
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl

from tamis.errors import DataError


def require_label(df: pl.DataFrame, label: str) -> None:
    """An error naming the columns when `label` is not one of them."""
    if label not in df.columns:
        raise DataError(
            f"label column '{label}' is not in the data (columns: {', '.join(df.columns[:20])})",
            column=label,
            fix="set `label` to the column holding the class",
        )


def check_label_dtype(df: pl.DataFrame, label: str) -> None:
    """A label holds one class per row: lists, arrays, structs and objects are refused."""
    dtype = df.schema[label]
    if dtype.is_nested() or dtype in (pl.Object, pl.Binary):
        raise DataError(
            f"label column '{label}' has dtype {dtype}; a label holds one class per row",
            column=label,
            field="label",
            fix="name a column of classes (numbers, strings or booleans) in `label`",
        )


def check_labels(df: pl.DataFrame, label: str) -> pl.Series:
    """The label column, checked: present, no nulls, at least two classes."""
    require_label(df, label)
    check_label_dtype(df, label)
    s = df.get_column(label)
    if s.null_count():
        raise DataError(
            f"label column '{label}' has {s.null_count()} null value(s)",
            column=label,
            fix="drop unlabelled rows first (e.g. a filter step), or fill them",
        )
    if s.n_unique() < 2:
        raise DataError(
            f"label column '{label}' has a single class; label issues need at least two",
            column=label,
            fix="check the label column, or skip this step",
        )
    return s


def null_label_mask(s: pl.Series) -> np.ndarray:
    """Rows whose label is missing: null, or NaN in a float label."""
    missing = s.is_null()
    if s.dtype.is_float():
        missing = missing | s.is_nan().fill_null(True)
    return missing.to_numpy().astype(bool)


def drop_null_labels(
    df: pl.DataFrame, label: str, *, purpose: str, rows: str = "row(s)", stacklevel: int = 3
) -> tuple[pl.DataFrame, int, list[str]]:
    """Rows with a null (or NaN) label removed, how many, and a warning saying so.

    `rows` names the rows in the warning (e.g. "annotation(s)"); `stacklevel` is the warning's.
    """
    if label not in df.columns:
        return df, 0, []
    missing = null_label_mask(df.get_column(label))
    n = int(missing.sum())
    if n == 0:
        return df, 0, []
    if n == df.height:  # nothing left: the caller raises its own error
        return df.clear(), n, []
    msg = (
        f"{n:,} of {df.height:,} {rows} have a null label in '{label}':"
        f" dropped before {purpose} (null_labels_dropped: {n})"
    )
    warnings.warn(msg, stacklevel=stacklevel)
    return df.filter(pl.Series(~missing)), n, [msg]


def labelled_rows(
    df: pl.DataFrame, label: str, *, purpose: str
) -> tuple[pl.DataFrame, int, list[str]]:
    """The rows with a label, checked: `drop_null_labels`, then an error when none is left."""
    require_label(df, label)
    check_label_dtype(df, label)
    df, n_null, warns = drop_null_labels(df, label, purpose=purpose, stacklevel=4)
    if df.height == 0:
        raise DataError(
            f"label column '{label}' is entirely null: no labelled row for {purpose}",
            column=label,
            field="label",
            fix="set `label` to the column holding the class",
        )
    return df, n_null, warns


def encode_labels(labels: pl.Series) -> tuple[pl.Series, np.ndarray]:
    """Sorted distinct values of a (null-free) label series and each row's index into them."""
    classes = labels.unique().sort()
    lookup = pl.DataFrame({"_v": classes, "_i": np.arange(len(classes), dtype=np.int64)})
    idx = (
        pl.DataFrame({"_v": labels})
        .join(lookup, on="_v", how="left", maintain_order="left")
        .get_column("_i")
        .to_numpy()
    )
    return classes, idx.astype(np.int64)
