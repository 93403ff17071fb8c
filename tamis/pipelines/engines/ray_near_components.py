"""Near dedup's stage 5 on Ray when the edge list does not fit the driver: every edge stays in
files, the components are found by tasks (`ray_components`), and the keep rule, the marks, the
`clusters` and `pairs` tables come out of tasks too; same result as the driver's union-find.

    edge_files, counts = verify_to_files(ray, run, config, stage4, directory)  # both paths
    parts, rows_out, samples, plan, pairs = distributed_stage5(...)            # edges too many

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
4. one task per bucket of m: the clusters (`clusters_from_groups`, the driver path's function),
   back to the driver (the `clusters` table, its largest ones for the examples), and each row's
   (cluster, dropped by the keep rule) into a file with one record batch per range of rows;
5. one task per range of rows: the marks of its rows (`RowMarks`, scores) into the driver path's
   `OutputPlan.mark`, its rows to a chunk file, and its pairs sorted into a Parquet file (the
   `pairs` table is a scan of those files, in range order: it never passes through the driver).

The keep rule keeps the lowest (or highest) row of a cluster, a cluster is named by its lowest
row: the labels give both, so the parts, report and tables equal the driver path's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tamis.curate.dedup.clusters import ROW, RowMarks, clusters_from_groups, top_clusters
from tamis.curate.dedup.near import NearDedupConfig
from tamis.curate.dedup.near_stages import OutputPlan, Verified
from tamis.pipelines.engines.memory import row_bytes
from tamis.pipelines.engines.ray_components import (
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
    files: list[str], bucket: int, keep: str, range_rows: int, ranges: int, path: str
) -> bytes:
    """One bucket of labels (u, m) by m: its clusters (the `clusters` table's rows, back to the
    driver) and each row's (cluster, dropped by the keep rule) to a file by range of rows."""
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
    written = write_buckets(Path(path), nodes, _routed(nodes, "row", range_rows), ranges)
    return pack({"bytes": written, "rows": nodes.height}, {"clusters": clusters})


def mark_task(
    source: pl.LazyFrame,
    rows: Range,
    index: int,
    files: tuple[list[str], list[str], list[str]],
    template: OutputPlan,
    chunk: str,
    pairs: str,
) -> bytes:
    """One range of rows: its marks (from the clusters' and the side tasks' files) through the
    driver path's `OutputPlan.mark` into a chunk file; its pairs, sorted, to a Parquet file."""
    node_files, best_files, pair_files = ([Path(f) for f in group] for group in files)
    start, n = rows
    nodes = _read(node_files, index, NODE_SCHEMA)
    best = _read(best_files, index, BEST_SCHEMA).sort("row")
    marks = RowMarks(
        pl.Series(ROW, nodes.filter("drop")["row"].sort(), dtype=pl.Int64).implode(),
        nodes.select(
            pl.col("row").alias("__member"), pl.col("cluster_id").alias(f"{template.issue}_cluster")
        ).sort("__member"),
    )
    plan = replace(
        template, marks=marks, nodes=best["row"].to_numpy(), best=best["best"].to_numpy()
    )
    kept, sample = plan.mark(source.slice(start, n).collect(), start)
    written = write_ipc(Path(chunk), kept)
    table = _read(pair_files, index, PAIRS_SCHEMA).sort("left", "right")
    pair_bytes = replace_into(Path(pairs), lambda p: table.write_parquet(p))
    frames = {"sizes": pl.DataFrame({"b": row_bytes(kept).cast(pl.Int64)})}
    if sample is not None:
        frames["sample"] = sample
    meta = {"rows_out": kept.height, "chunk_bytes": written, "pair_bytes": pair_bytes}
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
) -> tuple[list[Any], int, list[pl.DataFrame], OutputPlan, pl.LazyFrame]:
    """Stage 5 with the edges in files (module doc); `edges`: the identical edges (first, copy),
    the verification tasks' edge files, the stage's bucket count and the number of edges.

    Returns (parts, rows out, example rows, the plan `near_report` needs, the `pairs` table as a
    scan of Parquet files beside `out`)."""
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
    found: Components = components(
        ray_executor(ray, lambda metas: run.saw(metas, "components")), edge_files, buckets, cc
    )
    run.components.update(rounds=found.rounds, unstable=found.unstable, records=found.records)
    run.shuffle["components"] = found.shuffle_bytes
    node_files = [str(cc / "nodes" / f"{b:06d}.arrow") for b in range(buckets)]
    jobs = [
        remote(cluster_task).remote(
            found.label_files, b, config.keep, range_rows, n_ranges, node_files[b]
        )
        for b in range(buckets)
    ]
    results = run.results(ray, jobs, "components")
    frames = [f["clusters"] for _, f in results]
    clusters = pl.concat(frames).sort("cluster_id") if frames else pl.DataFrame()
    show = clusters.height > 0 and config.max_examples > 0
    top = top_clusters(clusters, config.max_examples) if show else None
    nothing = RowMarks(pl.Series(ROW, [], dtype=pl.Int64).implode(), pl.DataFrame())
    plan = OutputPlan(nothing, EMPTY[0], EMPTY[2], config.action, issue, top, clusters, EMPTY)

    engine.progress("near_dedup: writing the kept rows")
    src, template = ray.put(source), ray.put(replace(plan, clusters=clusters.head(0)))
    chunks = [spill / "out" / f"{i:06d}.arrow" for i in range(n_ranges)]
    tables = out.parent / f"{out.name}.tables" / "pairs"
    pairs = [tables / f"{i:06d}.parquet" for i in range(n_ranges)]
    files = (node_files, best_files, pair_files)
    jobs = [
        remote(mark_task).remote(src, r, i, files, template, str(chunks[i]), str(pairs[i]))
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
    return parts, rows_out, samples, plan, pl.scan_parquet(pairs)


__all__ = [
    "cluster_task",
    "distributed_stage5",
    "edge_records",
    "mark_task",
    "side_task",
    "read_verified",
    "route_task",
    "verify_to_file_task",
    "verify_to_files",
]
