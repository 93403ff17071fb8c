"""Near dedup's stage 5 on Ray when the edge list does not fit the driver: every edge stays in
files, the components are found by tasks (`ray_components`), and the keep rule, the marks, the
`clusters` and `pairs` tables come out of tasks too; same result as the driver's union-find.

    edge_files, counts = verify_to_files(ray, run, config, stage4, directory)  # both paths
    parts, rows_out, samples, plan, tables = distributed_stage5(...)           # edges too many
    report = task_report(plan, tables, (rows_in, rows_out), samples, ...)

0. the verification tasks (the stage's own `verify_task`) write their verified edges to files
   and return their counts: the driver knows the number of edges before it chooses (the driver
   path reads the files back: `read_verified`);
1. tasks route the edges into records (u, v, jaccard) both ways, by the bucket of u; the driver
   writes the identical sets' edges (first, copy) the same way (it holds them already: band
   grouping needs the copies);
2. one task per vertex bucket: each vertex's highest Jaccard (the flag score) and the pairs
   (left < right), each in a file with one record batch per range of input rows;
3. the components: large-star / small-star rounds (`ray_components.components`) -> labels (u, m),
   m the component's smallest row;
4. one task per bucket of m: the clusters (`clusters_from_groups`, the driver path's function)
   into a file by range of `cluster_id`, and each row's (cluster, dropped by the keep rule) into
   a file by range of rows; back to the driver only counts and the task's largest clusters (the
   examples are the largest of those: `top_clusters` of the whole table);
5. one task per range of rows: the marks of its rows (`RowMarks`, scores) into the driver path's
   `OutputPlan.mark`, its rows to a chunk file, its pairs (by left row) and its clusters (by
   `cluster_id`) sorted into Parquet files: the `pairs` and `clusters` tables are scans of those
   files, in range order (`TaskTables`); they never pass through the driver. The report's
   cluster counts are a streaming aggregate of the scan's `size` column (`task_report`).

The keep rule keeps the lowest (or highest) row of a cluster, a cluster is named by its lowest
row: the labels give both, so the parts, report and tables equal the driver path's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tamis.curate.dedup.clusters import (
    ROW,
    RowMarks,
    cluster_summary,
    clusters_from_groups,
    top_clusters,
)
from tamis.curate.dedup.near import LshCounts, NearDedupConfig
from tamis.curate.dedup.near_stages import OutputPlan, Verified, near_report
from tamis.pipelines.engines.memory import row_bytes
from tamis.pipelines.engines.ray_components import (
    MIN_HEAVY,
    Components,
    both_ways,
    components,
    ray_executor,
    write_records,
)
from tamis.pipelines.engines.ray_files import (
    pack,
    read_bucket,
    replace_into,
    unpack,
    write_buckets,
    write_ipc,
)
from tamis.pipelines.engines.ray_near_tasks import Range, verify_task

PAIRS_SCHEMA = {"left": pl.Int64, "right": pl.Int64, "jaccard": pl.Float64}
NODE_SCHEMA = {"row": pl.Int64, "cluster_id": pl.Int64, "drop": pl.Boolean}
BEST_SCHEMA = {"row": pl.Int64, "best": pl.Float64}
#: the `clusters` table (`clusters_from_groups`)
CLUSTER_SCHEMA: dict[str, Any] = {
    "cluster_id": pl.Int64,
    "size": pl.Int64,
    "rows": pl.List(pl.Int64),
}
EMPTY = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))


def edge_records(left: np.ndarray, right: np.ndarray, jac: np.ndarray) -> pl.DataFrame:
    edges = pl.DataFrame(
        {"u": left, "v": right, "j": jac}, schema={"u": pl.Int64, "v": pl.Int64, "j": pl.Float64}
    )
    return both_ways(edges)


# ---- tasks -----------------------------------------------------------------------------------
def verify_to_file_task(
    pair_files: list[str],
    index: int,
    shingles: str,
    starts: np.ndarray,
    threshold: float,
    chunk: int,
    path: str,
) -> bytes:
    """Stage 4 (`verify_task`) for one range of left rows; its edges (l, r, j) to a file."""
    meta, frames = unpack(verify_task(pair_files, index, shingles, starts, threshold, chunk))
    edges = frames["edges"]
    written = write_ipc(Path(path), edges)
    keep = {k: meta[k] for k in ("candidates", "histogram")}
    return pack({**keep, "verified": edges.height, "edge_bytes": written})


@dataclass
class VerifiedCounts:
    """What the verification tasks counted (their edges are in files)."""

    candidates: int
    histogram: np.ndarray
    edges: int


def verify_to_files(
    ray: Any, run: Any, config: NearDedupConfig, stage4: dict[str, Any], directory: Path
) -> tuple[list[str], VerifiedCounts]:
    """Stage 4 as tasks, each writing its verified edges to a file (in range order); counts."""
    from tamis.pipelines.engines.ray_files import remote

    files = [str(directory / f"{r:06d}.arrow") for r in range(int(stage4["n"]))]
    jobs = [
        remote(verify_to_file_task).remote(
            stage4["pair_files"], r, stage4["shingles"], stage4["starts"], config.threshold,
            stage4["chunk"], files[r],
        )
        for r in range(len(files))
    ]  # fmt: skip
    metas = [m for m, _ in run.results(ray, jobs, "verification")]
    run.shuffle["verified edges"] = sum(m["edge_bytes"] for m in metas)
    counts = VerifiedCounts(
        sum(m["candidates"] for m in metas),
        np.sum([np.asarray(m["histogram"], np.int64) for m in metas], axis=0),
        sum(m["verified"] for m in metas),
    )
    return files, counts


def read_verified(files: list[str]) -> Verified:
    """The verified edges of the files, in the files' order (the driver path: they fit)."""
    frames = [pl.read_ipc(f) for f in files]
    return Verified(
        [f["l"].to_numpy() for f in frames],
        [f["r"].to_numpy() for f in frames],
        [f["j"].to_numpy() for f in frames],
    )


def route_task(path: str, out: str, buckets: int) -> bytes:
    """Verified edges (l, r, j) -> records (u, v, j) both ways, routed by the bucket of u."""
    e = pl.read_ipc(path)
    records = edge_records(e["l"].to_numpy(), e["r"].to_numpy(), e["j"].to_numpy())
    return pack({"bytes": write_records(Path(out), records, buckets)})


def _routed(frame: pl.DataFrame, column: str, range_rows: int) -> np.ndarray:
    return (frame[column].to_numpy() // range_rows).astype(np.int64)


def side_task(
    files: list[str], bucket: int, range_rows: int, ranges: int, best: str, pairs: str
) -> bytes:
    """One vertex bucket of the edge records: the highest Jaccard of each vertex, and the pairs
    (left < right), each to a file with one record batch per range of rows."""
    records = read_bucket([Path(f) for f in files], bucket)
    if not records.width:
        records = pl.DataFrame(schema={"u": pl.Int64, "v": pl.Int64, "j": pl.Float64})
    top = records.group_by("u").agg(pl.col("j").max().alias("best")).rename({"u": "row"})
    written = write_buckets(Path(best), top, _routed(top, "row", range_rows), ranges)
    edges = records.filter(pl.col("u") < pl.col("v")).select(
        pl.col("u").alias("left"), pl.col("v").alias("right"), pl.col("j").alias("jaccard")
    )
    written += write_buckets(Path(pairs), edges, _routed(edges, "left", range_rows), ranges)
    return pack({"vertices": top.height, "pairs": edges.height, "bytes": written})


def cluster_task(
    files: list[str],
    bucket: int,
    keep: str,
    ranges: tuple[int, int],
    paths: tuple[str, str],
    max_examples: int,
) -> bytes:
    """One bucket of labels (u, m) by m: its clusters, routed by range of `cluster_id` (the
    `clusters` table's rows, assembled by the mark tasks), and each row's (cluster, dropped by
    the keep rule), routed by range of rows; back to the driver: counts and its largest
    clusters (`top_clusters`, at most `max_examples`), never the table.

    `ranges`: (rows per range, ranges); `paths`: (the nodes file, the clusters file)."""
    range_rows, n_ranges = ranges
    labels = read_bucket([Path(f) for f in files if Path(f).exists()], bucket) if files else None
    if labels is None or not labels.width:
        labels = pl.DataFrame(schema={"u": pl.Int64, "m": pl.Int64})
    groups = labels.group_by("m").agg(pl.col("u").alias("rows")).drop("m")
    clusters = clusters_from_groups(groups)
    if keep == "first":
        drop = pl.col("u") != pl.col("m")
    elif keep == "last":
        drop = pl.col("u") != pl.col("u").max().over("m")
    else:
        drop = pl.lit(True)
    nodes = labels.select(
        pl.col("u").alias("row"), pl.col("m").alias("cluster_id"), drop.alias("drop")
    )
    node_path, cluster_path = paths
    written = write_buckets(Path(node_path), nodes, _routed(nodes, "row", range_rows), n_ranges)
    routed = _routed(clusters, "cluster_id", range_rows)
    written += write_buckets(Path(cluster_path), clusters, routed, n_ranges)
    top = top_clusters(clusters, max(max_examples, 0))
    meta = {
        "bytes": written,
        "rows": nodes.height,
        "clusters": clusters.height,
        "rows_in_clusters": int(clusters["size"].sum()),
    }
    return pack(meta, {"top": top})


def mark_task(
    source: pl.LazyFrame,
    rows: Range,
    index: int,
    files: tuple[list[str], list[str], list[str], list[str]],
    template: OutputPlan,
    outputs: tuple[str, str, str],
) -> bytes:
    """One range of rows: its marks (from the clusters' and the side tasks' files) through the
    driver path's `OutputPlan.mark` into a chunk file; its pairs (by left row) and its clusters
    (by `cluster_id`), sorted, to Parquet files: the tables are scans of those files.

    `files`: the node, best, pairs and clusters files; `outputs`: chunk, pairs, clusters."""
    node_files, best_files, pair_files, cluster_files = ([Path(f) for f in g] for g in files)
    chunk, pairs, clusters = outputs
    start, n = rows
    nodes = _read(node_files, index, NODE_SCHEMA)
    best = _read(best_files, index, BEST_SCHEMA).sort("row")
    marks = RowMarks(
        pl.Series(ROW, nodes.filter("drop")["row"].sort(), dtype=pl.Int64).implode(),
        nodes.select(
            pl.col("row").alias("__member"), pl.col("cluster_id").alias(f"{template.issue}_cluster")
        ).sort("__member"),
    )
    del nodes
    plan = replace(
        template, marks=marks, nodes=best["row"].to_numpy(), best=best["best"].to_numpy()
    )
    kept, sample = plan.mark(source.slice(start, n).collect(), start)
    written = write_ipc(Path(chunk), kept)
    del plan, marks, best
    table = _read(pair_files, index, PAIRS_SCHEMA).sort("left", "right")
    pair_bytes = replace_into(Path(pairs), lambda p: table.write_parquet(p))
    del table
    table = _read(cluster_files, index, CLUSTER_SCHEMA).sort("cluster_id")
    cluster_bytes = replace_into(Path(clusters), lambda p: table.write_parquet(p))
    frames = {"sizes": pl.DataFrame({"b": row_bytes(kept).cast(pl.Int64)})}
    if sample is not None:
        frames["sample"] = sample
    meta = {
        "rows_out": kept.height,
        "chunk_bytes": written,
        "pair_bytes": pair_bytes,
        "cluster_bytes": cluster_bytes,
    }
    return pack(meta, frames)


def _read(files: list[Path], index: int, schema: dict[str, Any]) -> pl.DataFrame:
    frame = read_bucket(files, index) if files else pl.DataFrame()
    return frame if frame.width else pl.DataFrame(schema=schema)


# ---- the driver ------------------------------------------------------------------------------
def distributed_stage5(
    ray: Any,
    run: Any,
    engine: Any,
    source: pl.LazyFrame,
    config: NearDedupConfig,
    issue: str,
    edges: tuple[tuple[np.ndarray, np.ndarray], list[str], int, int],
    ranges: list[Range],
    spill: Path,
    out: Path,
) -> tuple[list[Any], int, list[pl.DataFrame], OutputPlan, TaskTables]:
    """Stage 5 with the edges in files (module doc); `edges`: the identical edges (first, copy),
    the verification tasks' edge files, the stage's bucket count and the number of edges.

    Returns (parts, rows out, example rows, the plan `task_report` needs (without clusters),
    the `clusters` and `pairs` tables as scans of Parquet files beside `out`)."""
    from tamis.pipelines.engines.ray_components import component_buckets
    from tamis.pipelines.engines.ray_files import remote
    from tamis.pipelines.engines.ray_parts import write_parts

    (first, copy), verified_files, n, count = edges
    cc = spill / "cc"
    buckets = component_buckets(count, engine.memory_limit, n)
    run.components["buckets"] = buckets
    engine.progress("near_dedup: edges to vertex buckets (tasks)")
    edge_files = [str(cc / "edges" / f"{r:06d}.arrow") for r in range(len(verified_files))]
    jobs = [
        remote(route_task).remote(f, edge_files[r], buckets) for r, f in enumerate(verified_files)
    ]
    run.results(ray, jobs, "components")
    identical = str(cc / "edges" / "identical.arrow")
    write_records(Path(identical), edge_records(first, copy, np.ones(copy.size)), buckets)
    edge_files.append(identical)
    engine.progress(f"near_dedup: connected components of {count:,} edges (tasks)")
    range_rows, n_ranges = ranges[0][1], len(ranges)
    best_files = [str(cc / "best" / f"{b:06d}.arrow") for b in range(buckets)]
    pair_files = [str(cc / "pairs" / f"{b:06d}.arrow") for b in range(buckets)]
    jobs = [
        remote(side_task).remote(edge_files, b, range_rows, n_ranges, best_files[b], pair_files[b])
        for b in range(buckets)
    ]
    run.results(ray, jobs, "components")
    execute = ray_executor(ray, lambda metas: run.saw(metas, "components"))
    min_heavy = getattr(engine, "components_min_heavy", MIN_HEAVY)  # tests lower it
    found: Components = components(execute, edge_files, buckets, cc, min_heavy)
    run.components.update(
        rounds=found.rounds,
        unstable=found.unstable,
        records=found.records,
        largest_bucket=found.largest_bucket,
        skew=found.skew,
        salted=found.salted,
    )
    run.shuffle["components"] = found.shuffle_bytes
    node_files = [str(cc / "nodes" / f"{b:06d}.arrow") for b in range(buckets)]
    cluster_files = [str(cc / "clusters" / f"{b:06d}.arrow") for b in range(buckets)]
    jobs = [
        remote(cluster_task).remote(
            found.label_files, b, config.keep, (range_rows, n_ranges),
            (node_files[b], cluster_files[b]), config.max_examples,
        )
        for b in range(buckets)
    ]  # fmt: skip
    results = run.results(ray, jobs, "components")
    counts = ClusterCounts(
        sum(m["clusters"] for m, _ in results), sum(m["rows_in_clusters"] for m, _ in results)
    )
    top = None
    if counts.clusters and config.max_examples > 0:  # `top_clusters` of the tasks' largest
        top = pl.concat([f["top"] for _, f in results]).sort(
            ["size", "cluster_id"], descending=[True, False]
        )
        top = top.head(config.max_examples)
    del results
    nothing = RowMarks(pl.Series(ROW, [], dtype=pl.Int64).implode(), pl.DataFrame())
    no_clusters = pl.DataFrame(schema=CLUSTER_SCHEMA)
    plan = OutputPlan(nothing, EMPTY[0], EMPTY[2], config.action, issue, top, no_clusters, EMPTY)

    engine.progress("near_dedup: writing the kept rows")
    src, template = ray.put(source), ray.put(plan)
    chunks = [spill / "out" / f"{i:06d}.arrow" for i in range(n_ranges)]
    tables = out.parent / f"{out.name}.tables"
    pairs = [tables / "pairs" / f"{i:06d}.parquet" for i in range(n_ranges)]
    clusters = [tables / "clusters" / f"{i:06d}.parquet" for i in range(n_ranges)]
    files = (node_files, best_files, pair_files, cluster_files)
    jobs = [
        remote(mark_task).remote(
            src, r, i, files, template, (str(chunks[i]), str(pairs[i]), str(clusters[i]))
        )
        for i, r in enumerate(ranges)
    ]
    results = run.results(ray, jobs, "marking")
    del src, template
    run.shuffle["output chunks"] = sum(m["chunk_bytes"] for m, _ in results)
    sizes = [f["sizes"]["b"].to_numpy() for _, f in results]
    samples = [f["sample"] for _, f in results if "sample" in f]
    writer = engine.local.part_writer(out)
    parts, part_metas = write_parts(ray, chunks, sizes, out, (writer.max_rows, writer.max_bytes))
    run.saw(part_metas, "parts")
    run.lap("parts")
    rows_out = sum(m["rows_out"] for m, _ in results)
    scans = TaskTables(pl.scan_parquet(clusters), pl.scan_parquet(pairs), counts)
    return parts, rows_out, samples, plan, scans


@dataclass
class ClusterCounts:
    """What the cluster tasks counted of the `clusters` table."""

    clusters: int
    rows_in_clusters: int


@dataclass
class TaskTables:
    """The tables of the task path: scans of the Parquet files the mark tasks wrote (one per
    range of rows, in order: `clusters` sorted by `cluster_id`, `pairs` by (left, right))."""

    clusters: pl.LazyFrame
    pairs: pl.LazyFrame
    counts: ClusterCounts


def task_report(
    plan: OutputPlan,
    tables: TaskTables,
    rows: tuple[int, int],
    samples: list[pl.DataFrame],
    config: NearDedupConfig,
    shape: tuple[int, int],
    lsh: LshCounts,
    seed: int,
) -> dict[str, Any]:
    """`near_report` of the task path (`rows`: in, out): the driver path's function on the plan
    (its examples, LSH figures), the cluster counts from the scan of the `clusters` files (a
    streaming aggregate of their `size` column: never the table on the driver)."""
    rows_in, rows_out = rows
    report, _, _ = near_report(plan, rows_in, rows_out, samples, config, shape, lsh, seed)
    counts = tables.counts
    removed = counts.rows_in_clusters - (counts.clusters if config.keep != "none" else 0)
    summary = cluster_summary(
        rows_in, rows_out, tables.clusters, removed, config.keep, config.action
    )
    return {**report, **summary}  # the same keys, in near_report's order


__all__ = [
    "CLUSTER_SCHEMA",
    "ClusterCounts",
    "TaskTables",
    "cluster_task",
    "distributed_stage5",
    "edge_records",
    "mark_task",
    "read_verified",
    "route_task",
    "side_task",
    "task_report",
    "verify_to_file_task",
    "verify_to_files",
]
