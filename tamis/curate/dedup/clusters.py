"""Duplicate clusters: numbering, the rows `keep` removes, components of pair edges, examples.

Shared by exact dedup (groups of equal keys) and near dedup (connected components of verified
pairs): a cluster is a set of input row positions; it is numbered by its first (lowest) row, so the
numbering does not depend on how the rows were partitioned.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np
import polars as pl

#: the source position of every row (the same name as the pipeline engine's `ROW`)
ROW = "__tamis_row"

Keep = Literal["first", "last", "none"]
Action = Literal["drop", "flag"]


def clusters_from_groups(groups: pl.DataFrame, members: str = "rows") -> pl.DataFrame:
    """Groups of row positions (a list column) -> cluster table sorted by cluster id.

    A cluster's id is its first (lowest) row position, so it is the same however the rows were
    split into buckets (an engine may find the clusters bucket by bucket).
    """
    groups = groups.with_columns(
        pl.col(members).list.sort(),
        pl.col(members).list.len().cast(pl.Int64).alias("size"),
        pl.col(members).list.min().cast(pl.Int64).alias("cluster_id"),
    ).sort("cluster_id")
    rest = [c for c in groups.columns if c not in ("cluster_id", "size", members)]
    return groups.select("cluster_id", "size", members, *rest)


def removed_rows(clusters: pl.DataFrame, keep: str, members: str = "rows") -> np.ndarray:
    """Row indices `drop` removes: all but the first/last member of each cluster, or all of them."""
    if clusters.height == 0:
        return np.zeros(0, dtype=np.int64)
    rows = clusters.select(pl.col(members).explode())[members]
    if keep == "first":
        rows = clusters.select(pl.col(members).list.slice(1).explode())[members]
    elif keep == "last":
        rows = clusters.select(pl.col(members).list.head(pl.col(members).list.len() - 1).explode())[
            members
        ]
    return np.sort(rows.drop_nulls().to_numpy().astype(np.int64))


def membership(clusters: pl.DataFrame, members: str = "rows") -> pl.DataFrame:
    """(row, cluster_id) for every row that belongs to a cluster."""
    return (
        clusters.select(pl.col(members).alias("row"), "cluster_id")
        .explode("row")
        .with_columns(pl.col("row").cast(pl.Int64))
        .sort("row")
    )


def top_clusters(clusters: pl.DataFrame, max_examples: int) -> pl.DataFrame:
    """The largest clusters (cluster_id, size, first_row), ties by cluster id."""
    top = clusters.sort(["size", "cluster_id"], descending=[True, False]).head(max_examples)
    return top.select("cluster_id", "size", pl.col("rows").list.first().alias("first_row"))


def examples_table(top: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """`top` (cluster_id, size, first_row) beside the first row's values (as short strings)."""
    cols = rows.columns[:20]
    shown = pl.DataFrame(
        {c: [None if v is None else str(v)[:200] for v in rows[c].to_list()] for c in cols},
        schema={c: pl.String for c in cols},
    )  # a handful of rows: plain str() works for every dtype (lists, structs, dates...)
    return pl.concat([top, shown], how="horizontal")


def mark_rows(
    indexed: pl.LazyFrame | pl.DataFrame,
    clusters: pl.DataFrame,
    keep: str,
    action: str,
    issue: str,
    score: np.ndarray | None = None,
) -> Any:
    """Drop the rows `keep` removes, or flag them (rows are named by their position in `ROW`).

    Flags: `<issue>_cluster`, `is_<issue>_issue` and `<issue>_score` (`score`, one per row in
    order, or 0 for a cluster member and 1 otherwise). Works on a frame or a lazy frame (the same
    type comes back, `ROW` kept).
    """
    return mark_with(indexed, RowMarks.of(clusters, keep, issue), action, issue, score)


class RowMarks(NamedTuple):
    """What `mark_rows` needs of the clusters, computed once (an engine marks batch by batch)."""

    drop: pl.Series
    member: pl.DataFrame

    @classmethod
    def of(cls, clusters: pl.DataFrame, keep: str, issue: str) -> RowMarks:
        drop = pl.Series(ROW, removed_rows(clusters, keep), dtype=pl.Int64).implode()
        member = membership(clusters).rename({"row": "__member", "cluster_id": f"{issue}_cluster"})
        return cls(drop, member)


def mark_with(
    indexed: pl.LazyFrame | pl.DataFrame,
    marks: RowMarks,
    action: str,
    issue: str,
    score: np.ndarray | None = None,
) -> Any:
    """`mark_rows` with the clusters' `RowMarks` (any subset of the rows, e.g. one batch)."""
    drop, member = marks
    row = pl.col(ROW).cast(pl.Int64)
    if action == "drop":
        return indexed.filter(~row.is_in(drop))
    other = member.lazy() if isinstance(indexed, pl.LazyFrame) else member
    return (
        indexed.with_columns(row.alias("__member"))
        .join(other, on="__member", how="left", maintain_order="left")  # type: ignore[arg-type]
        .with_columns(
            row.is_in(drop).alias(f"is_{issue}_issue"),
            pl.when(pl.col(f"{issue}_cluster").is_null())
            .then(1.0)
            .otherwise(0.0)
            .alias(f"{issue}_score")
            if score is None
            else pl.Series(f"{issue}_score", score),
        )
        .drop("__member")
    )


def cluster_examples(
    indexed: pl.LazyFrame | pl.DataFrame, clusters: pl.DataFrame, max_examples: int
) -> pl.DataFrame | None:
    """The largest clusters beside their first row's values (None when there is nothing to show)."""
    if not clusters.height or max_examples <= 0:
        return None
    top = top_clusters(clusters, max_examples)
    wanted = top.select(pl.col("first_row").alias(ROW))
    rows = indexed.with_columns(pl.col(ROW).cast(pl.Int64))
    if isinstance(rows, pl.LazyFrame):
        sample = rows.join(wanted.lazy(), on=ROW, how="semi").collect(engine="streaming")
    else:
        sample = rows.join(wanted, on=ROW, how="semi")
    return examples_of(top, sample)


def examples_of(top: pl.DataFrame, sample: pl.DataFrame) -> pl.DataFrame:
    """`top` clusters beside their first rows, found in `sample` (rows with an Int64 `ROW`)."""
    wanted = top.select(pl.col("first_row").alias(ROW))
    ordered = wanted.join(sample, on=ROW, how="left")
    return examples_table(top, ordered.drop(ROW))


def flag_schema(schema: pl.Schema, action: str, issue: str) -> pl.Schema:
    """The output schema of a dedup for an input of `schema` (the flag columns `mark_rows` adds)."""
    if action == "drop":
        return schema
    return pl.Schema(
        [
            *schema.items(),
            (f"{issue}_cluster", pl.Int64),
            (f"is_{issue}_issue", pl.Boolean),
            (f"{issue}_score", pl.Float64),
        ]
    )


def cluster_summary(
    n_in: int,
    n_out: int,
    clusters: pl.DataFrame | pl.LazyFrame,
    removed: int,
    keep: str,
    action: str,
) -> dict[str, Any]:
    """The counts every dedup report starts with (a lazy cluster table is aggregated streaming)."""
    agg = clusters.lazy().select(
        pl.len().alias("clusters"),
        pl.col("size").sum().alias("rows"),
        pl.col("size").max().alias("largest"),
    )
    n_clusters, in_clusters, largest = agg.collect(engine="streaming").row(0)
    n_clusters = int(n_clusters or 0)
    in_clusters = int(in_clusters or 0) if n_clusters else 0
    duplicates = in_clusters - n_clusters
    return {
        "rows_in": n_in,
        "rows_out": n_out,
        "duplicates": duplicates,
        "duplicate_rate": duplicates / n_in if n_in else 0.0,
        "clusters": n_clusters,
        "rows_in_clusters": in_clusters,
        "largest_cluster": int(largest or 0) if n_clusters else 0,
        "removed": removed if action == "drop" else 0,
        "flagged": removed if action == "flag" else 0,
        "keep": keep,
        "action": action,
    }


def removed_count(clusters: pl.DataFrame, keep: str) -> int:
    """How many rows `drop` removes: all but one per cluster, or every member with keep none."""
    return int(clusters["size"].sum()) - (clusters.height if keep != "none" else 0)


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected components (union-find over the edge list) -> component label per node."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(left.size, dtype=np.int8), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def edge_clusters(left: np.ndarray, right: np.ndarray) -> pl.DataFrame:
    """Clusters = connected components of the pair edges (row positions) -> cluster table.

    Only the rows that have an edge are nodes, so memory follows the (small) edge list, not
    the number of rows.
    """
    nodes = np.unique(np.concatenate([left, right]).astype(np.int64))
    labels = (
        components(nodes.size, np.searchsorted(nodes, left), np.searchsorted(nodes, right))
        if nodes.size
        else np.zeros(0, dtype=np.int64)
    )
    frame = pl.DataFrame({"row": nodes, "c": labels}, schema={"row": pl.Int64, "c": pl.Int64})
    groups = frame.group_by("c").agg(pl.col("row").alias("rows"))
    return clusters_from_groups(groups.filter(pl.col("rows").list.len() > 1).drop("c"))


def best_similarity(
    left: np.ndarray, right: np.ndarray, sim: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(rows with an edge, sorted; the highest similarity of each to another row)."""
    nodes = np.unique(np.concatenate([left, right]).astype(np.int64))
    best = np.zeros(nodes.size, dtype=np.float64)
    if left.size:
        np.maximum.at(best, np.searchsorted(nodes, left), sim)
        np.maximum.at(best, np.searchsorted(nodes, right), sim)
    return nodes, best


def flag_scores(nodes: np.ndarray, best: np.ndarray, start: int, stop: int) -> np.ndarray:
    """The flag score (1 - highest similarity, 1 with no edge) of rows start..stop-1."""
    score = np.ones(stop - start, dtype=np.float64)
    lo, hi = np.searchsorted(nodes, [start, stop])
    score[nodes[lo:hi] - start] = 1.0 - best[lo:hi]
    return score


class NearDedupResult(NamedTuple):
    """Unpacks as `(frame, report, clusters, pairs)`; `pairs` holds left, right, jaccard."""

    frame: pl.DataFrame
    report: dict[str, Any]
    clusters: pl.DataFrame
    pairs: pl.DataFrame


def apply_pairs(
    df: pl.DataFrame,
    left: np.ndarray,
    right: np.ndarray,
    jac: np.ndarray,
    *,
    keep: str,
    action: str,
    issue: str,
    max_examples: int,
) -> tuple[pl.DataFrame, dict[str, Any], pl.DataFrame]:
    """Clusters = connected components of the pairs; keep/drop/flag as in `exact_dedup`.

    The flag score is 1 - the highest similarity of a row to any other row (1 with no pair).
    """
    n = df.height
    clusters = edge_clusters(left, right)
    score = flag_scores(*best_similarity(left, right, jac), 0, n) if action == "flag" else None
    indexed = df.with_row_index(ROW)
    out = mark_rows(indexed, clusters, keep, action, issue, score=score).drop(ROW)
    report = cluster_summary(n, out.height, clusters, removed_count(clusters, keep), keep, action)
    examples = cluster_examples(indexed, clusters, max_examples)
    if examples is not None:
        report["examples"] = examples.to_dicts()
    return out, report, clusters
