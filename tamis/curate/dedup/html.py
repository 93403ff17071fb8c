"""Self-contained HTML pages for the dedup, near_dedup and leakage steps (plots inlined)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from tamis.htmlreport import figure_tag, page, table_tag

_SUMMARY = (
    "rows_in",
    "rows_out",
    "duplicates",
    "clusters",
    "rows_in_clusters",
    "largest_cluster",
    "removed",
    "flagged",
    "keep",
    "action",
)
_NEAR = (
    "unit",
    "ngram",
    "num_perm",
    "threshold",
    "bands",
    "rows_per_band",
    "candidate_probability_at_threshold",
    "candidate_pairs",
    "verified_pairs",
    "false_candidates",
    "identical_shingle_sets",
    "documents_without_shingles",
    "oversized_buckets",
)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_dedup_html(
    report: dict[str, Any],
    clusters: pl.DataFrame | pl.LazyFrame,
    path: str | Path,
    title: str = "Duplicates",
) -> None:
    """Summary, LSH settings (near_dedup), cluster-size and Jaccard histograms, largest clusters.

    `clusters` may be a scan of an engine's files: only the count of clusters per size is read
    (a streaming group-by of the `size` column, as many rows as distinct sizes), never the table;
    the largest clusters come from the report's examples."""
    sections = [("Summary", table_tag([{k: report[k] for k in _SUMMARY if k in report}]))]
    near = {k: report[k] for k in _NEAR if k in report}
    if near:
        sections.append(("MinHash / LSH", table_tag([near])))
    plt = _plt()
    sizes = size_counts(clusters)
    if sizes.height:
        fig, ax = plt.subplots(figsize=(6, 3))
        size, count = sizes["size"].to_numpy(), sizes["clusters"].to_numpy()
        ax.hist(size, bins=int(min(50, max(int(size.max()), 2))), weights=count)
        ax.set_xlabel("cluster size (rows)")
        ax.set_ylabel("clusters")
        ax.set_yscale("log")
        sections.append(("Cluster sizes", figure_tag(fig, "cluster sizes")))
    hist = report.get("jaccard_histogram")
    if hist:
        fig, ax = plt.subplots(figsize=(6, 3))
        lows = [h["bin_low"] for h in hist]
        ax.bar(
            lows,
            [h["count"] for h in hist],
            width=lows[1] - lows[0] if len(lows) > 1 else 0.05,
            align="edge",
            color="#4062bb",
        )
        ax.axvline(report.get("threshold", 0.8), color="#b3261e", linestyle="--", label="threshold")
        ax.set_xlabel("true Jaccard of candidate pairs")
        ax.set_ylabel("pairs")
        ax.legend()
        sections.append(
            ("Jaccard of checked candidate pairs", figure_tag(fig, "jaccard histogram"))
        )
    sections.append(("Largest clusters", table_tag(report.get("examples", []))))
    Path(path).write_text(page(title, sections), encoding="utf-8")


def size_counts(clusters: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """(size, clusters): how many clusters have each size, by size (the histogram's input)."""
    counts = clusters.lazy().group_by("size").agg(pl.len().cast(pl.Int64).alias("clusters"))
    return counts.sort("size").collect(engine="streaming")


def write_leakage_html(report: dict[str, Any], path: str | Path) -> None:
    """One table per eval set and check, plus the per-feature target-leakage AUCs."""
    top = {k: report[k] for k in ("rows_in", "rows_out", "leaked_rows", "removed", "action")}
    sections = [
        ("Summary", table_tag([top])),
        ("Leaked rows by check", table_tag([report.get("leaked_rows_by_check", {})])),
    ]
    for name, checks in report.get("against", {}).items():
        rows = []
        for check, values in checks.items():
            if not isinstance(values, dict):
                continue
            flat = {"check": check}
            for key, value in values.items():
                if isinstance(value, dict):
                    flat.update({f"{key}.{k}": v for k, v in value.items()})
                elif not isinstance(value, list):
                    flat[key] = value
            rows.append(flat)
        body = "".join(table_tag([r]) for r in rows) or '<p class="note">(no checks ran)</p>'
        sections.append((f"Against {name} ({checks.get('rows', '?')} rows)", body))
    tl = report.get("target_leakage")
    if tl and tl.get("features"):
        feats = tl["features"]
        plt = _plt()
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(feats) + 1))
        names = [f["feature"] for f in feats][::-1]
        aucs = [f["auc"] for f in feats][::-1]
        ax.barh(
            names, aucs, color=["#b3261e" if a >= tl["threshold_auc"] else "#4062bb" for a in aucs]
        )
        ax.axvline(tl["threshold_auc"], color="#b3261e", linestyle="--")
        ax.set_xlim(0.4, 1.0)
        ax.set_xlabel("cross-validated AUC of the feature alone")
        sections.append(("Target leakage", figure_tag(fig, "target leakage") + table_tag(feats)))
    Path(path).write_text(page("Leakage", sections), encoding="utf-8")
