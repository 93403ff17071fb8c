"""Near dedup of text on Ray: the stages of `tamis.curate.dedup.near_stages` as tasks.

    parts, report, clusters, pairs = ray_near_dedup_text(engine, source, config, out=dir)

1. signatures, one task per range of input rows (the task reads the rows itself): its shingle
   sets (a hashes file and an offsets file, for verification), and its fingerprints and band
   keys, each in one file with one record batch per bucket (the shuffle's map side);
2. identical sets, one task per fingerprint bucket: (first, copy) edges, back to the driver;
3. band grouping, one task per band bucket (the hash repartition by (band, key)): candidate
   pairs of first copies, written in one file with one record batch per range of the left row;
4. verification, one task per range: unique candidates, exact Jaccard on the shingle sets of
   their rows, gathered from the signature tasks' files by row range -> verified edges;
5. connected components and the keep rule: on the driver (union-find over the edge list) while
   the edges fit its share of the memory limit (a quarter; the bound: identical edges + candidate
   pairs, `ray_components.driver_fits`); else as tasks, every edge staying in files
   (`ray_near_components`: large-star / small-star rounds, `ray_components`). Then one task per
   range of input rows marks its rows and writes them to a chunk file, and one task per part
   writes the parts (`ray_parts`) into `out`. On the task path the `clusters` and `pairs` tables
   are scans of Parquet files the tasks wrote beside `out` (the driver holds neither).

Same functions, same rows: the parts, report and tables are the local engine's.
Files go under a spill dir in the step's spill root (the store's tmp dir), deleted at the end.
"""

from __future__ import annotations

import math
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tamis.curate.dedup.near import LshCounts, NearDedupConfig
from tamis.curate.dedup.near_bounded import (
    bucket_count,
    check_near_input,
    check_rows,
    map_batch_rows,
)
from tamis.curate.dedup.near_stages import (
    OutputPlan,
    all_edges,
    near_report,
    sorted_by_copy,
    verify_chunk,
)
from tamis.pipelines.engines.ray_components import driver_fits
from tamis.pipelines.engines.ray_env import import_ray
from tamis.pipelines.engines.ray_files import get_all, remote, unpack
from tamis.pipelines.engines.ray_near_components import (
    TaskTables,
    distributed_stage5,
    read_verified,
    task_report,
    verify_to_files,
)
from tamis.pipelines.engines.ray_near_tasks import (
    Range,
    candidates_task,
    identical_task,
    output_task,
    signature_task,
)
from tamis.pipelines.engines.ray_parts import write_parts


# ---- the driver -----------------------------------------------------------------------------
@dataclass
class NearRun:
    """What the driver tracks: timings, bytes moved per stage, nodes, peak memory of tasks."""

    timings: dict[str, float] = field(default_factory=dict)
    shuffle: dict[str, int] = field(default_factory=dict)
    nodes: set[str] = field(default_factory=set)
    worker_peak: int = 0
    #: the tasks' peak memory (process lifetime, so a worker's peak so far) after each stage
    peaks: dict[str, int] = field(default_factory=dict)
    #: how the components ran: in_driver, estimated_edges; on tasks: buckets, rounds, unstable
    #: vertices and records per round
    components: dict[str, Any] = field(default_factory=dict)
    clock: float = field(default_factory=time.perf_counter)

    def results(
        self, ray: Any, jobs: list[Any], stage: str
    ) -> list[tuple[dict[str, Any], dict[str, pl.DataFrame]]]:
        out = [unpack(blob) for blob in get_all(ray, jobs, f"near dedup's {stage}")]
        self.saw([m for m, _ in out], stage)
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - self.clock
        self.clock = now
        return out

    def saw(self, metas: list[dict[str, Any]], stage: str) -> None:
        for m in metas:
            self.nodes.add(m["node"])
            self.worker_peak = max(self.worker_peak, int(m["peak_rss"]))
            self.peaks[stage] = max(self.peaks.get(stage, 0), int(m["peak_rss"]))

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - self.clock
        self.clock = now


def _ranges(total: int, rows: int) -> list[Range]:
    return [(s, min(rows, total - s)) for s in range(0, total, rows)]


def ray_near_dedup_text(
    engine: Any, source: pl.LazyFrame, config: NearDedupConfig, *, out: Path, **options: Any
) -> tuple[list[Any], dict[str, Any], pl.DataFrame | pl.LazyFrame, pl.DataFrame | pl.LazyFrame]:
    """`near_dedup_text_bounded` on Ray (`engine`: a `RayEngine`); same parts, report, tables
    (on the components' task path, `clusters` and `pairs` are scans of the tasks' Parquet files).

    `options`: `seed` (0), `issue` ("near_duplicate"), `buckets` (from the limit and the CPUs).
    """
    seed, issue = int(options.get("seed", 0)), str(options.get("issue", "near_duplicate"))
    buckets: int | None = options.get("buckets")
    ray = import_ray()
    column, shape = check_near_input(source, config)
    local = engine.local
    total = int(source.select(pl.len()).collect().item())
    batch = map_batch_rows(local, source, column)
    local.stats.batch_rows = batch
    ranges = _ranges(total, batch)
    if not ranges:
        check_rows(0, 0, column)
    n = buckets or max(bucket_count(local, source, shape[0]), engine.min_buckets(ray))
    local.stats.buckets = n
    spill = engine.spill_root / f"ray-near-{uuid.uuid4().hex[:12]}"
    run = NearRun()
    engine.near_run = run
    try:
        counts, stage4 = _candidates(
            ray, run, engine, source, config, seed, shape, ranges, n, spill
        )
        check_rows(total, counts.pop("nulls"), column)  # type: ignore[arg-type]
        lsh: LshCounts = counts.pop("lsh")  # type: ignore[assignment]
        engine.progress("near_dedup: verifying candidates (tasks)")
        edge_files, verified = verify_to_files(ray, run, config, stage4, spill / "verified")
        lsh.candidates, lsh.histogram = verified.candidates, verified.histogram
        lsh.verified = verified.edges
        identical = stage4["identical"]
        tables: TaskTables | None = None
        count = int(identical[1].size) + verified.edges
        if in_driver(engine, count):
            edges = all_edges(identical, read_verified(edge_files))
            engine.progress("near_dedup: connected components (driver)")
            plan = OutputPlan.of(edges, config, issue)  # union-find over the edge list, keep rule
            del edges
            run.lap("components")
            engine.progress("near_dedup: writing the kept rows")
            parts, rows_out, samples = _output(ray, run, engine, source, plan, ranges, spill, out)
        else:
            parts, rows_out, samples, plan, tables = distributed_stage5(
                ray, run, engine, source, config, issue, (identical, edge_files, n, count), ranges,
                spill, out,
            )  # fmt: skip
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    local.stats.parts_written += len(parts)
    if tables is not None:  # the tables are scans of the tasks' files: never on the driver
        counted = (total, rows_out)
        report = task_report(plan, tables, counted, samples, config, shape, lsh, seed)
        return parts, report, tables.clusters, tables.pairs
    report, clusters, pairs = near_report(plan, total, rows_out, samples, config, shape, lsh, seed)
    return parts, report, clusters, pairs


def in_driver(engine: Any, edges: int) -> bool:
    """Union-find on the driver when the `edges` (identical + verified, counted by the tasks
    that wrote them to files) fit its share of the memory limit (or are at most the engine's
    `components_in_driver_max_edges`, when set); else the components run as tasks."""
    bound = getattr(engine, "components_in_driver_max_edges", None)
    fits = driver_fits(edges, engine.memory_limit, bound)
    engine.near_run.components = {"in_driver": fits, "edges": edges}
    return fits


def _candidates(
    ray: Any,
    run: NearRun,
    engine: Any,
    source: pl.LazyFrame,
    config: NearDedupConfig,
    seed: int,
    shape: tuple[int, int],
    ranges: list[Range],
    n: int,
    spill: Path,
) -> tuple[dict[str, object], dict[str, Any]]:
    """Stages 1-3 as tasks -> (counts, what verification needs: its tasks' arguments and the
    identical edges)."""
    column = config.column
    assert column is not None
    engine.progress("near_dedup: shingles and MinHash signatures (tasks)")
    texts = ray.put(source.select(column))
    jobs = [
        remote(signature_task).remote(texts, i, r, config, seed, shape, n, str(spill))
        for i, r in enumerate(ranges)
    ]
    metas = [m for m, _ in run.results(ray, jobs, "signatures")]
    del texts
    lsh = LshCounts(without_shingles=sum(m["without_shingles"] for m in metas))
    nulls = sum(m["nulls"] for m in metas)
    run.shuffle["signatures -> grouping"] = sum(m["shuffle_bytes"] for m in metas)
    run.shuffle["shingle sets"] = sum(m["shingle_bytes"] for m in metas)
    names = [f"{i:06d}.arrow" for i in range(len(ranges))]
    engine.progress("near_dedup: identical shingle sets (tasks)")
    fp_files = [str(spill / "fp" / f) for f in names]
    found = run.results(
        ray, [remote(identical_task).remote(fp_files, b) for b in range(n)], "identical"
    )
    edges = [f["edges"] for _, f in found]
    identical = sorted_by_copy(
        [e["f"].to_numpy() for e in edges], [e["d"].to_numpy() for e in edges]
    )
    del edges, found
    lsh.identical = int(identical[1].size)
    engine.progress("near_dedup: LSH band buckets (tasks)")
    band_files = [str(spill / "bands" / f) for f in names]
    range_rows = max(1, math.ceil(sum(r for _, r in ranges) / n))
    copies = ray.put(identical[1])
    pair_files = [str(spill / "pairs" / f"{b:06d}.arrow") for b in range(n)]
    jobs = [
        remote(candidates_task).remote(band_files, b, copies, range_rows, n, pair_files[b])
        for b in range(n)
    ]
    metas = [m for m, _ in run.results(ray, jobs, "band grouping")]
    lsh.oversized = sum(m["oversized"] for m in metas)
    run.shuffle["grouping -> verification"] = sum(m["shuffle_bytes"] for m in metas)
    stage4 = {
        "n": n,
        "pair_files": pair_files,
        "shingles": str(spill / "shingles"),
        "starts": np.array([s for s, _ in ranges], np.int64),
        "chunk": _chunk(spill, ranges, engine.memory_limit / 8),
        "identical": identical,
    }
    return {"nulls": nulls, "lsh": lsh}, stage4


def _chunk(spill: Path, ranges: list[Range], budget: float) -> int:
    """Verification chunk: from the mean shingle set size (the shingle files' bytes per row)."""
    total = sum(p.stat().st_size for p in (spill / "shingles").glob("*.u64"))
    rows = max(sum(r for _, r in ranges), 1)
    return verify_chunk(max(total, 8) / rows, budget)


def _output(
    ray: Any,
    run: NearRun,
    engine: Any,
    source: pl.LazyFrame,
    plan: OutputPlan,
    ranges: list[Range],
    spill: Path,
    out: Path,
) -> tuple[list[Any], int, list[pl.DataFrame]]:
    """Stage 5: tasks mark their rows into chunk files, then tasks write the parts."""
    src, shipped = ray.put(source), ray.put(plan.for_tasks())
    files = [spill / "out" / f"{i:06d}.arrow" for i in range(len(ranges))]
    jobs = [
        remote(output_task).remote(src, r, shipped, str(files[i])) for i, r in enumerate(ranges)
    ]
    results = run.results(ray, jobs, "marking")
    del src, shipped
    run.shuffle["output chunks"] = sum(m["chunk_bytes"] for m, _ in results)
    sizes = [f["sizes"]["b"].to_numpy() for _, f in results]
    samples = [f["sample"] for _, f in results if "sample" in f]
    writer = engine.local.part_writer(out)
    bounds = (writer.max_rows, writer.max_bytes)
    parts, metas = write_parts(ray, files, sizes, out, bounds)
    run.saw(metas, "parts")
    run.lap("parts")
    return parts, sum(m["rows_out"] for m, _ in results), samples


__all__ = ["ray_near_dedup_text"]
