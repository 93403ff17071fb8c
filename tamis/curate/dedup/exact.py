"""Exact duplicate removal on chosen columns, after optional normalisation.

    from tamis.curate.dedup import exact_dedup
    out, report, clusters = exact_dedup(df, columns="all", normalize=True, keep="first")

Algorithm (vectorised, scales out): hash the normalised key of every row (64-bit), keep only the
rows whose hash occurs more than once (typically a few percent), then group those candidate rows on
the real key values, so a hash collision can never merge two different rows. Only the candidates are
grouped on full values, which makes this faster than a plain `unique` over every column. A
`LazyFrame` input is processed with Polars' streaming engine and the output stays lazy, so data
larger than memory works (only the hash table and the candidate rows are held).

Issue columns follow the cleanlab convention: with `action="flag"` rows are kept and get
`<issue>_cluster` (cluster id or null), `is_<issue>_issue` (True for the rows `drop` would remove)
and `<issue>_score` in [0, 1] (0 for every member of a duplicate cluster, 1 otherwise; low = bad).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from tamis.curate.dedup.clusters import (
    Action,
    Keep,
    check_keep_action,
    clusters_from_groups,
    examples_table,
    membership,
    removed_rows,
    top_clusters,
)
from tamis.curate.dedup.keys import check_columns, normalized_key_exprs, resolve_normalize
from tamis.errors import StepError

_ROW = "__tamis_row"
_HASH = "__tamis_hash"
HASH_SEED = 0x7A315


class DedupResult(NamedTuple):
    """What a dedup function returns; unpacks as `(frame, report, clusters)`.

    `frame`: the output rows (duplicates dropped, or flagged); a LazyFrame when the input was lazy.
    `report`: JSON-able dict (rows_in, rows_out, duplicates, clusters, examples...).
    `clusters`: one row per duplicate cluster: cluster_id, size, rows (input row indices).
    """

    frame: pl.DataFrame | pl.LazyFrame
    report: dict[str, Any]
    clusters: pl.DataFrame


def _issue_columns(
    n: int, member_rows: np.ndarray, member_cluster: np.ndarray, drop: np.ndarray, issue: str
) -> list[pl.Series]:
    cluster = np.full(n, -1, dtype=np.int64)
    cluster[member_rows] = member_cluster
    flag = np.zeros(n, dtype=bool)
    flag[drop] = True
    score = np.ones(n, dtype=np.float64)
    score[member_rows] = 0.0
    cluster_s = pl.Series(f"{issue}_cluster", cluster)
    cluster_s = pl.select(pl.when(cluster_s >= 0).then(cluster_s)).to_series()
    return [
        cluster_s.alias(f"{issue}_cluster"),
        pl.Series(f"is_{issue}_issue", flag),
        pl.Series(f"{issue}_score", score),
    ]


def _group_candidates(cand: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
    groups = (
        cand.group_by(cols).agg(pl.col(_ROW).alias("rows")).filter(pl.col("rows").list.len() > 1)
    )
    renamed = {c: f"{c}_value" if c in ("cluster_id", "size", "rows") else c for c in cols}
    return clusters_from_groups(groups.rename(renamed))


def _report(
    n_in: int,
    n_out: int,
    clusters: pl.DataFrame,
    removed: int,
    *,
    cols: list[str],
    ops: Sequence[str],
    round_floats: int | None,
    keep: str,
    action: str,
    examples: pl.DataFrame | None,
) -> dict[str, Any]:
    sizes = clusters["size"] if clusters.height else pl.Series("size", [], dtype=pl.Int64)
    duplicates = int((sizes - 1).sum()) if clusters.height else 0
    report: dict[str, Any] = {
        "rows_in": n_in,
        "rows_out": n_out,
        "duplicates": duplicates,
        "duplicate_rate": duplicates / n_in if n_in else 0.0,
        "clusters": clusters.height,
        "rows_in_clusters": int(sizes.sum()) if clusters.height else 0,
        "largest_cluster": int(sizes.max()) if clusters.height else 0,  # type: ignore[arg-type]
        "removed": removed if action == "drop" else 0,
        "flagged": removed if action == "flag" else 0,
        "columns": cols,
        "normalize": list(ops),
        "round_floats": round_floats,
        "keep": keep,
        "action": action,
    }
    if examples is not None:
        report["examples"] = examples.to_dicts()
    return report


def exact_dedup(
    df: pl.DataFrame | pl.LazyFrame,
    columns: Sequence[str] | str | None = "all",
    *,
    normalize: bool | Sequence[str] = False,
    round_floats: int | None = None,
    keep: Keep = "first",
    action: Action = "drop",
    issue: str = "duplicate",
    max_examples: int = 10,
    step: str = "dedup",
) -> DedupResult:
    """Remove (or flag) rows identical on `columns` after normalisation.

    Args:
        df: the rows; a LazyFrame is streamed and the returned frame stays lazy.
        columns: "all" (or None) for every column, or a list of column names.
        normalize: True for strip + casefold + NFKC on string columns, a list of some of
            "strip", "casefold", "nfkc", or False for byte-exact comparison. Only the comparison
            key is normalised; the output keeps the original values.
        round_floats: round float columns to this many decimals before comparing (None: exact;
            -0.0 equals 0.0 and NaN equals NaN either way). Nulls compare equal to nulls.
        keep: which member of a cluster survives: "first", "last" (by row order) or "none".
        action: "drop" removes the duplicates; "flag" keeps every row and adds
            `<issue>_cluster`, `is_<issue>_issue`, `<issue>_score`.
        issue: the issue name used in the flag columns.
        max_examples: clusters shown (largest first) in `report["examples"]`.
        step: the step name used in error messages.

    Returns:
        DedupResult(frame, report, clusters): unpack as `out, report, clusters = exact_dedup(...)`.
    """
    check_keep_action(keep, action, step=step)
    ops = resolve_normalize(normalize, step=step)
    cols = check_columns(df, columns, step=step)
    schema = df.collect_schema()
    keys = normalized_key_exprs(schema, cols, ops, round_floats)
    if isinstance(df, pl.LazyFrame):
        return _exact_dedup_lazy(
            df, cols, keys, ops, round_floats, keep, action, issue, max_examples, step
        )
    n = df.height
    if n == 0:
        raise StepError("the input has no rows", step=step, fix="check the previous step's filters")
    key_frame = df.select(keys)
    hashes = key_frame.hash_rows(seed=HASH_SEED)
    cand_idx = hashes.is_duplicated().arg_true()
    cand = key_frame[cand_idx].with_columns(cand_idx.cast(pl.Int64).alias(_ROW))
    clusters = _group_candidates(cand, cols)
    drop = removed_rows(clusters, keep)
    if action == "drop":
        if drop.size:
            mask = np.ones(n, dtype=bool)
            mask[drop] = False
            out = df.filter(pl.Series(mask))
        else:
            out = df
    else:
        member = membership(clusters)
        out = df.with_columns(
            _issue_columns(
                n, member["row"].to_numpy(), member["cluster_id"].to_numpy(), drop, issue
            )
        )
    report = _report(
        n,
        out.height,
        clusters,
        int(drop.size),
        cols=cols,
        ops=ops,
        round_floats=round_floats,
        keep=keep,
        action=action,
        examples=(
            examples_table(top := top_clusters(clusters, max_examples), df[top["first_row"]])
            if clusters.height and max_examples > 0
            else None
        ),
    )
    return DedupResult(out, report, clusters)


def _exact_dedup_lazy(
    lf: pl.LazyFrame,
    cols: list[str],
    keys: list[pl.Expr],
    ops: Sequence[str],
    round_floats: int | None,
    keep: str,
    action: str,
    issue: str,
    max_examples: int,
    step: str,
) -> DedupResult:
    indexed = lf.with_row_index(_ROW)
    hashed = indexed.select(
        pl.col(_ROW).cast(pl.Int64), pl.struct(keys).hash(HASH_SEED).alias(_HASH)
    )
    dup_hashes = hashed.group_by(_HASH).agg(pl.len().alias("n")).filter(pl.col("n") > 1)
    stats, cand_rows = pl.collect_all(
        [
            hashed.select(pl.len().alias("n")),
            hashed.join(dup_hashes, on=_HASH, how="semi").select(_ROW),
        ],
        engine="streaming",
    )
    n = int(stats["n"][0])
    if n == 0:
        raise StepError("the input has no rows", step=step, fix="check the previous step's filters")
    cand = (
        indexed.with_columns(pl.col(_ROW).cast(pl.Int64))
        .join(cand_rows.lazy(), on=_ROW, how="semi")
        .select(*keys, _ROW)
        .collect(engine="streaming")
    )
    clusters = _group_candidates(cand, cols)
    drop = removed_rows(clusters, keep)
    drop_s = pl.Series(_ROW, drop, dtype=pl.Int64)
    if action == "drop":
        out: pl.LazyFrame = indexed.filter(
            ~pl.col(_ROW).cast(pl.Int64).is_in(drop_s.implode())
        ).drop(_ROW)
        n_out = n - int(drop.size)
    else:
        member = membership(clusters).rename({"row": _ROW, "cluster_id": f"{issue}_cluster"})
        out = (
            indexed.with_columns(pl.col(_ROW).cast(pl.Int64))
            .join(member.lazy(), on=_ROW, how="left", maintain_order="left")
            .with_columns(
                pl.col(_ROW).is_in(drop_s.implode()).alias(f"is_{issue}_issue"),
                pl.when(pl.col(f"{issue}_cluster").is_null())
                .then(1.0)
                .otherwise(0.0)
                .alias(f"{issue}_score"),
            )
            .drop(_ROW)
        )
        n_out = n
    examples = None
    if clusters.height and max_examples > 0:
        top = top_clusters(clusters, max_examples)
        sample = (
            indexed.with_columns(pl.col(_ROW).cast(pl.Int64))
            .join(top.lazy().select(pl.col("first_row").alias(_ROW)), on=_ROW, how="semi")
            .collect(engine="streaming")
        )
        ordered = top.select(pl.col("first_row").alias(_ROW)).join(sample, on=_ROW, how="left")
        examples = examples_table(top, ordered.drop(_ROW))
    report = _report(
        n,
        n_out,
        clusters,
        int(drop.size),
        cols=cols,
        ops=ops,
        round_floats=round_floats,
        keep=keep,
        action=action,
        examples=examples,
    )
    return DedupResult(out, report, clusters)
