"""Turning near-duplicate pairs into clusters, a kept/dropped/flagged frame and a report."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import polars as pl

from tamis.curate.dedup import clusters_from_groups, examples_table, removed_rows, top_clusters
from tamis.curate.minhash import components


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
