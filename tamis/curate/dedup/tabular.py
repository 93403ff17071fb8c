"""Tabular near-duplicates: equal categorical values, numeric values within a tolerance (blocking)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from tamis.curate.dedup.clusters import (
    NearDedupResult,
    apply_pairs,
)
from tamis.curate.dedup.keys import check_columns
from tamis.curate.dedup.minhash import key_runs, pairs_in_buckets
from tamis.curate.dedup.near import NearDedupConfig
from tamis.errors import DataError


def tabular_pairs(
    df: pl.DataFrame,
    categorical: Sequence[str],
    numeric: Sequence[str],
    tolerance: float | dict[str, float],
    *,
    normalize: bool = True,
    max_block: int = 5000,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of rows equal on `categorical` (after strip/casefold) and within tolerance on `numeric`.

    Blocking: cells of width 2*tol on (up to) the first three numeric columns, on two grids offset
    by half a cell, so every pair within tol shares a cell on one of the 2^k grid combinations; the
    candidates in a cell are then checked on every numeric column. Nulls equal nulls.
    """
    tol = {c: float(tolerance[c] if isinstance(tolerance, dict) else tolerance) for c in numeric}
    cat_exprs = []
    for c in categorical:
        if df.schema[c].is_nested():
            # struct/list/array values match when equal as a whole (no strip/casefold inside)
            cat_exprs.append(pl.col(c))
            continue
        e = pl.col(c).cast(pl.String)
        if normalize:
            e = e.str.strip_chars().str.to_lowercase()
        cat_exprs.append(e.alias(c))
    block_cols = [c for c in numeric if tol[c] > 0][:3]
    exact_num = [c for c in numeric if tol[c] <= 0]
    base = df.select(*cat_exprs, *[pl.col(c) for c in exact_num])
    found = []
    for combo in range(1 << len(block_cols)):
        cells = [
            ((pl.col(c).cast(pl.Float64) / (2 * tol[c])) + (0.5 if combo >> k & 1 else 0.0))
            .floor()
            .cast(pl.Int64)
            .alias(f"__cell{k}")
            for k, c in enumerate(block_cols)
        ]
        key = pl.concat([base, df.select(cells)], how="horizontal") if cells else base
        if key.width == 0:
            key = pl.DataFrame({"__all": np.zeros(df.height, np.int8)})
        order, starts, sizes = key_runs(key.hash_rows(seed=17).to_numpy())
        keep = sizes <= max_block
        found.append(pairs_in_buckets(order.astype(np.int64), starts[keep], sizes[keep]))
    pairs = np.concatenate(found) if found else np.zeros((0, 2), np.int64)
    if pairs.size == 0:
        return pairs.reshape(0, 2), np.zeros(0)
    pairs = np.unique(np.sort(pairs, axis=1), axis=0)
    li, ri = pairs[:, 0], pairs[:, 1]
    ok = np.ones(li.size, dtype=bool)
    key_all = df.select(*cat_exprs, *[pl.col(c) for c in exact_num])
    if key_all.width:
        kh = key_all.hash_rows(seed=29).to_numpy()
        ok &= kh[li] == kh[ri]
    dist = np.zeros(li.size)
    for c in numeric:
        v = df[c].cast(pl.Float64).to_numpy()
        d = np.abs(v[li] - v[ri])
        both_null = np.isnan(v[li]) & np.isnan(v[ri])
        ok &= (d <= tol[c]) | both_null
        if tol[c] > 0:
            dist = np.maximum(dist, np.where(both_null, 0.0, d / tol[c]))
    return pairs[ok], dist[ok]


def _tabular_columns(df: pl.DataFrame, config: NearDedupConfig) -> tuple[list[str], list[str]]:
    """(categorical, numeric) columns, checked; both default to every column, split by dtype."""
    categorical, numeric = config.categorical, config.numeric
    if categorical is None and numeric is None:
        cols = check_columns(df, "all")
        numeric = [c for c in cols if df.schema[c].is_numeric()]
        categorical = [c for c in cols if c not in numeric]
    categorical = check_columns(df, list(categorical), field="categorical") if categorical else []
    numeric = check_columns(df, list(numeric), field="numeric") if numeric else []
    if not categorical and not numeric:
        raise DataError(
            "no columns to compare: every row would be a duplicate of every other",
            field="categorical",
            fix="name columns under `categorical` and/or `numeric`, or leave both out to use all",
        )
    for c in numeric:
        if not df.schema[c].is_numeric():
            raise DataError(
                f"numeric column has dtype {df.schema[c]}",
                column=c,
                field="numeric",
                fix="list it under categorical, or cast it to a number first",
            )
        if df[c].null_count() == df.height:
            raise DataError("column is entirely null", column=c, field="numeric")
    if isinstance(config.tolerance, dict):
        for c in config.tolerance:
            if c not in numeric:
                raise DataError(
                    "tolerance names a column that is not numeric", column=c, field="tolerance"
                )
    return categorical, numeric


def near_dedup_tabular(
    df: pl.DataFrame, config: NearDedupConfig, *, issue: str = "near_duplicate"
) -> NearDedupResult:
    """Rows equal on categorical columns (normalised) and within `tolerance` on numeric ones.

    Columns default to every column, split by dtype. Nested columns (struct, list) are categorical
    and match when their whole values are equal. `tolerance` is absolute, one number or one
    per numeric column. The pairs table's `jaccard` column holds 1 - (largest |difference| /
    tolerance) so it reads like a similarity.
    """
    if df.height == 0:
        raise DataError("the input has no rows", fix="check the previous step's filters")
    categorical, numeric = _tabular_columns(df, config)
    tolerance = config.tolerance
    pairs, dist = tabular_pairs(df, categorical, numeric, tolerance)
    sim = 1.0 - dist
    out, report, clusters = apply_pairs(
        df,
        pairs[:, 0],
        pairs[:, 1],
        sim,
        keep=config.keep,
        action=config.action,
        issue=issue,
        max_examples=config.max_examples,
    )
    report = {
        **report,
        "mode": "tabular",
        "categorical": list(categorical),
        "numeric": list(numeric),
        "tolerance": tolerance,
        "verified_pairs": int(pairs.shape[0]),
    }
    tbl = pl.DataFrame(
        {"left": pairs[:, 0], "right": pairs[:, 1], "jaccard": sim},
        schema={"left": pl.Int64, "right": pl.Int64, "jaccard": pl.Float64},
    )
    return NearDedupResult(out, report, clusters, tbl)
