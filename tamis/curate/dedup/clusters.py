"""Duplicate clusters: numbering, the rows `keep` removes, components of pair edges, examples.

Shared by exact dedup (groups of equal keys) and near dedup (connected components of verified
pairs): a cluster is a set of input row positions; it is numbered by its first (lowest) row, so the
numbering does not depend on how the rows were partitioned.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np
import polars as pl

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


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected components (union-find over the edge list) -> component label per node."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(left.size, dtype=np.int8), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


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
    labels = components(n, left, right)
    frame = pl.DataFrame({"row": np.arange(n, dtype=np.int64), "c": labels})
    sizes = (
        frame.group_by("c").agg(pl.col("row").alias("rows")).filter(pl.col("rows").list.len() > 1)
    )
    clusters = clusters_from_groups(sizes.drop("c"))
    drop = removed_rows(clusters, keep)
    best = np.zeros(n, dtype=np.float64)
    if left.size:
        np.maximum.at(best, left, jac)
        np.maximum.at(best, right, jac)
    if action == "drop":
        mask = np.ones(n, dtype=bool)
        mask[drop] = False
        out = df.filter(pl.Series(mask)) if drop.size else df
    else:
        cluster = np.full(n, -1, dtype=np.int64)
        member = clusters.select(pl.col("rows").alias("row"), "cluster_id").explode("row")
        cluster[member["row"].to_numpy().astype(np.int64)] = member["cluster_id"].to_numpy()
        flag = np.zeros(n, dtype=bool)
        flag[drop] = True
        cs = pl.Series(f"{issue}_cluster", cluster)
        out = df.with_columns(
            pl.select(pl.when(cs >= 0).then(cs)).to_series().alias(f"{issue}_cluster"),
            pl.Series(f"is_{issue}_issue", flag),
            pl.Series(f"{issue}_score", 1.0 - best),
        )
    size_s = clusters["size"]
    report: dict[str, Any] = {
        "rows_in": n,
        "rows_out": out.height,
        "duplicates": int((size_s - 1).sum()) if clusters.height else 0,
        "clusters": clusters.height,
        "rows_in_clusters": int(size_s.sum()) if clusters.height else 0,
        "largest_cluster": int(size_s.max()) if clusters.height else 0,  # type: ignore[arg-type]
        "removed": int(drop.size) if action == "drop" else 0,
        "flagged": int(drop.size) if action == "flag" else 0,
        "keep": keep,
        "action": action,
    }
    if clusters.height and max_examples > 0:
        top = top_clusters(clusters, max_examples)
        report["examples"] = examples_table(top, df[top["first_row"]]).to_dicts()
    return out, report, clusters
