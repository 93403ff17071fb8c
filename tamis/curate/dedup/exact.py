"""Exact duplicate removal on chosen columns, after optional normalisation.

    from tamis.curate.dedup import DedupConfig, exact_dedup
    out, report, clusters = exact_dedup(df, DedupConfig(normalize=True, keep="first"))

Algorithm (vectorised, scales out): hash the normalised key of every row (64-bit), keep only the
rows whose hash occurs more than once (typically a few percent), then group those candidate rows on
the real key values, so a hash collision can never merge two different rows. Only the candidates are
grouped on full values, which makes this faster than a plain `unique` over every column. A
`LazyFrame` input is processed with Polars' streaming engine and the output stays lazy, so data
larger than memory works (only the hash table and the candidate rows are held).

The same work split for an engine that partitions rows by key (the `dedup` step is `keyed`):
`key_hashes` is the key (rows with equal normalised keys have equal hashes, so they meet in one
bucket), `dedup_bucket` finds the clusters of one bucket on the real values and keeps or flags its
rows, and `report_from_buckets` makes the report from all buckets. A cluster's id is its first row
position and `keep` chooses by row position, so the result never depends on the buckets.

Issue columns follow the cleanlab convention: with `action="flag"` rows are kept and get
`<issue>_cluster` (cluster id or null), `is_<issue>_issue` (True for the rows `drop` would remove)
and `<issue>_score` in [0, 1] (0 for every member of a duplicate cluster, 1 otherwise; low = bad).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import polars as pl
from pydantic import Field

from tamis.config import Config
from tamis.curate.dedup.clusters import (
    ROW,
    Action,
    Keep,
    cluster_examples,
    cluster_summary,
    clusters_from_groups,
    examples_of,
    mark_rows,
    removed_count,
)
from tamis.curate.dedup.keys import check_columns, normalized_key_exprs, resolve_normalize
from tamis.errors import DataError

_HASH = "__tamis_hash"
HASH_SEED = 0x7A315


class DedupConfig(Config):
    """Exact duplicates: which columns are compared, how, and what happens to the duplicates."""

    columns: Literal["all"] | list[str] = Field(
        default="all", description="columns compared: all, or a list of names"
    )
    normalize: bool | list[Literal["strip", "casefold", "nfkc"]] = Field(
        default=False,
        description="normalise strings before comparing: true = strip + casefold + nfkc, or a list",
    )
    round_floats: int | None = Field(
        default=None, ge=0, description="round float columns to this many decimals before comparing"
    )
    keep: Keep = Field(default="first", description="which row of a duplicate cluster survives")
    action: Action = Field(
        default="drop",
        description="drop duplicates, or flag them (duplicate_cluster, is_duplicate_issue, duplicate_score)",
    )
    max_examples: int = Field(default=10, ge=0, description="largest clusters shown in the report")


class DedupResult(NamedTuple):
    """What a dedup function returns; unpacks as `(frame, report, clusters)`.

    `frame`: the output rows (duplicates dropped, or flagged); a LazyFrame when the input was lazy.
    `report`: JSON-able dict (rows_in, rows_out, duplicates, clusters, examples...).
    `clusters`: one row per duplicate cluster: cluster_id (its first row), size, rows (input row
    positions) and the key values.
    """

    frame: pl.DataFrame | pl.LazyFrame
    report: dict[str, Any]
    clusters: pl.DataFrame


@dataclass(frozen=True)
class DedupPlan:
    """The resolved key: compared columns, normalisation ops and one key expression per column."""

    cols: list[str]
    ops: tuple[str, ...]
    keys: list[pl.Expr]


def plan_dedup(schema: pl.Schema, config: DedupConfig) -> DedupPlan:
    """Check the columns against the input schema and build the normalised key expressions."""
    ops = resolve_normalize(config.normalize)
    cols = check_columns(schema, config.columns, exclude=(ROW,))
    return DedupPlan(cols, ops, normalized_key_exprs(schema, cols, ops, config.round_floats))


def key_hashes(frame: pl.DataFrame, plan: DedupPlan) -> pl.Series:
    """The 64-bit hash of each row's normalised key (equal keys, equal hashes)."""
    return frame.select(plan.keys).hash_rows(seed=HASH_SEED)


def _group_candidates(cand: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
    groups = (
        cand.group_by(cols).agg(pl.col(ROW).alias("rows")).filter(pl.col("rows").list.len() > 1)
    )
    renamed = {c: f"{c}_value" if c in ("cluster_id", "size", "rows") else c for c in cols}
    return clusters_from_groups(groups.rename(renamed))


def find_clusters(indexed: pl.DataFrame, plan: DedupPlan) -> pl.DataFrame:
    """Clusters of rows (with their positions in `ROW`) equal on the normalised key.

    Only rows whose key hash repeats are grouped, on the real key values (no collision merges).
    """
    key_frame = indexed.select(plan.keys)
    cand_idx = key_frame.hash_rows(seed=HASH_SEED).is_duplicated().arg_true()
    cand = key_frame[cand_idx].with_columns(indexed[ROW].gather(cand_idx).cast(pl.Int64))
    return _group_candidates(cand, plan.cols)


def _lazy_clusters(indexed: pl.LazyFrame, plan: DedupPlan) -> tuple[pl.DataFrame, int]:
    """`find_clusters` with Polars' streaming engine -> (clusters, number of rows)."""
    hashed = indexed.select(
        pl.col(ROW).cast(pl.Int64), pl.struct(plan.keys).hash(HASH_SEED).alias(_HASH)
    )
    dup_hashes = hashed.group_by(_HASH).agg(pl.len().alias("n")).filter(pl.col("n") > 1)
    stats, cand_rows = pl.collect_all(
        [
            hashed.select(pl.len().alias("n")),
            hashed.join(dup_hashes, on=_HASH, how="semi").select(ROW),
        ],
        engine="streaming",
    )
    n = int(stats["n"][0])
    if n == 0:
        return clusters_from_groups(
            pl.DataFrame({"rows": []}, schema={"rows": pl.List(pl.Int64)})
        ), 0
    cand = (
        indexed.with_columns(pl.col(ROW).cast(pl.Int64))
        .join(cand_rows.lazy(), on=ROW, how="semi")
        .select(*plan.keys, ROW)
        .collect(engine="streaming")
    )
    return _group_candidates(cand, plan.cols), n


def dedup_report(
    n_in: int,
    n_out: int,
    clusters: pl.DataFrame | pl.LazyFrame,
    removed: int,
    plan: DedupPlan,
    config: DedupConfig,
    examples: pl.DataFrame | None,
) -> dict[str, Any]:
    """The JSON-able report of an exact dedup."""
    report = cluster_summary(n_in, n_out, clusters, removed, config.keep, config.action)
    report.update(columns=plan.cols, normalize=list(plan.ops), round_floats=config.round_floats)
    if examples is not None:
        report["examples"] = examples.to_dicts()
    return report


def _no_rows() -> DataError:
    return DataError("the input has no rows", fix="check the previous step's filters")


def exact_dedup(
    df: pl.DataFrame | pl.LazyFrame,
    config: DedupConfig | None = None,
    *,
    issue: str = "duplicate",
) -> DedupResult:
    """Remove (or flag) rows identical on `config.columns` after normalisation.

    `df` may be lazy: it is then streamed and the returned frame stays lazy. Only the comparison
    key is normalised; the output keeps the original values. -0.0 equals 0.0, NaN equals NaN and
    nulls equal nulls. `issue` names the flag columns.

    Returns:
        DedupResult(frame, report, clusters): unpack as `out, report, clusters = exact_dedup(...)`.
    """
    config = config or DedupConfig()
    plan = plan_dedup(df.collect_schema(), config)
    indexed = df.with_row_index(ROW)
    if isinstance(indexed, pl.LazyFrame):
        clusters, n = _lazy_clusters(indexed, plan)
    else:
        clusters, n = find_clusters(indexed, plan), indexed.height
    if n == 0:
        raise _no_rows()
    removed = removed_count(clusters, config.keep)
    out = mark_rows(indexed, clusters, config.keep, config.action, issue).drop(ROW)
    n_out = n - removed if config.action == "drop" else n
    examples = cluster_examples(indexed, clusters, config.max_examples)
    report = dedup_report(n, n_out, clusters, removed, plan, config, examples)
    return DedupResult(out, report, clusters)


def dedup_bucket(
    indexed: pl.DataFrame, config: DedupConfig, plan: DedupPlan, issue: str = "duplicate"
) -> tuple[pl.DataFrame, dict[str, int], dict[str, pl.DataFrame]]:
    """One bucket of rows (whole keys, positions in `ROW`) -> (rows kept or flagged, counts, tables).

    The tables are the bucket's clusters and its largest clusters' examples, for
    `report_from_buckets`.
    """
    clusters = find_clusters(indexed, plan)
    removed = removed_count(clusters, config.keep)
    out = mark_rows(indexed, clusters, config.keep, config.action, issue)
    stats = {"rows_in": indexed.height, "rows_out": out.height, "removed": removed}
    tables = {"clusters": clusters}
    examples = cluster_examples(indexed, clusters, config.max_examples)
    if examples is not None:
        tables["examples"] = examples
    return out, stats, tables


def examples_from_rows(
    examples: pl.DataFrame, rows: pl.DataFrame, max_examples: int
) -> pl.DataFrame:
    """The buckets' examples (largest clusters first) rebuilt beside their first rows' values in
    `rows` (`ROW` Int64 and every input column): for buckets that held only the key columns."""
    top = examples.sort(["size", "cluster_id"], descending=[True, False]).head(max_examples)
    return examples_of(top.select("cluster_id", "size", "first_row"), rows)


def report_from_buckets(
    stats: dict[str, int | float],
    clusters: pl.DataFrame | pl.LazyFrame | None,
    examples: pl.DataFrame | None,
    plan: DedupPlan,
    config: DedupConfig,
) -> tuple[dict[str, Any], pl.DataFrame | pl.LazyFrame]:
    """The report and the cluster table (sorted by id) from every bucket's counts and tables.

    A lazy `clusters` is an engine's spilled table, already in id order (it may not fit in
    memory): it is aggregated streaming and returned as it is.
    """
    n = int(stats.get("rows_in", 0))
    if n == 0:
        raise _no_rows()
    if clusters is None:
        clusters = clusters_from_groups(
            pl.DataFrame({"rows": []}, schema={"rows": pl.List(pl.Int64)})
        )
    if isinstance(clusters, pl.DataFrame):
        clusters = clusters.sort("cluster_id")
    if examples is not None:
        examples = examples.sort(["size", "cluster_id"], descending=[True, False]).head(
            config.max_examples
        )
    removed = int(stats.get("removed", 0))
    report = dedup_report(
        n, int(stats.get("rows_out", 0)), clusters, removed, plan, config, examples
    )
    return report, clusters


__all__: Sequence[str] = [
    "DedupConfig",
    "DedupPlan",
    "DedupResult",
    "dedup_bucket",
    "exact_dedup",
    "examples_from_rows",
    "key_hashes",
    "plan_dedup",
    "report_from_buckets",
]
