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
5. on the driver: connected components of the (small) edge list and the keep rule; then one
   task per range of input rows marks its rows and writes them to a chunk file, and one task per
   part writes the parts (`ray_parts`) into `out`.

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
    Verified,
    all_edges,
    band_buckets,
    bucket_candidates,
    fingerprint_buckets,
    identical_edges,
    near_report,
    signature_batch,
    sorted_by_copy,
    verify_chunk,
    verify_pairs,
)
from tamis.curate.dedup.shingles import Shingles
from tamis.curate.dedup.spill import return_freed_memory
from tamis.pipelines.engines.memory import row_bytes
from tamis.pipelines.engines.ray_env import import_ray
from tamis.pipelines.engines.ray_files import (
    get_all,
    pack,
    read_bucket,
    remote,
    replace_into,
    unpack,
    write_buckets,
    write_ipc,
)
from tamis.pipelines.engines.ray_parts import write_parts

Range = tuple[int, int]  # (first row, rows)


# ---- tasks ----------------------------------------------------------------------------------
def signature_task(
    source: pl.LazyFrame,
    index: int,
    rows: Range,
    config: NearDedupConfig,
    seed: int,
    shape: tuple[int, int],
    buckets: int,
    spill: str,
) -> bytes:
    """Stage 1 for rows start..start+n: shingle files, fingerprint and band key bucket files."""
    return_freed_memory()
    start, n = rows
    column = config.column
    assert column is not None
    texts = source.slice(start, n).collect()[column]
    sh, fps, keys = signature_batch(texts, start, config, seed, shape)
    root = Path(spill)
    name = f"{index:06d}"
    hashes = root / "shingles" / f"{name}.u64"
    offsets = root / "shingles" / f"{name}.i64"
    written = write_raw(hashes, sh.hashes.astype("<u8", copy=False))
    written += write_raw(offsets, sh.offsets.astype("<i8"))
    fp_bytes = write_buckets(
        root / "fp" / f"{name}.arrow", fps, fingerprint_buckets(fps, buckets), buckets
    )
    band_bytes = write_buckets(
        root / "bands" / f"{name}.arrow", keys, band_buckets(keys, buckets), buckets
    )
    meta = {
        "rows": texts.len(),
        "nulls": texts.null_count(),
        "without_shingles": int((sh.sizes() == 0).sum()),
        "shingles": int(sh.offsets[-1]),
        "shingle_bytes": written,
        "shuffle_bytes": fp_bytes + band_bytes,
    }
    return pack(meta)


def write_raw(path: Path, values: np.ndarray) -> int:
    return replace_into(path, lambda p: p.write_bytes(values.tobytes()))


def identical_task(files: list[str], bucket: int) -> bytes:
    """Stage 2 for one fingerprint bucket: its (first, copy) edges."""
    frame = read_bucket([Path(f) for f in files], bucket)
    first, copy = identical_edges(frame) if frame.height else (np.zeros(0, np.int64),) * 2
    return pack(
        {}, {"edges": pl.DataFrame({"f": first, "d": copy}, schema={"f": pl.Int64, "d": pl.Int64})}
    )


def candidates_task(
    files: list[str], bucket: int, copies: np.ndarray, range_rows: int, ranges: int, path: str
) -> bytes:
    """Stage 3 for one band bucket: candidate pairs, one record batch per range of left rows."""
    frame = read_bucket([Path(f) for f in files], bucket)
    pairs, oversized = (
        bucket_candidates(frame, copies) if frame.height else (np.zeros((0, 2), np.int64), 0)
    )
    table = pl.DataFrame(
        {"l": pairs[:, 0], "r": pairs[:, 1]}, schema={"l": pl.Int64, "r": pl.Int64}
    )
    written = write_buckets(Path(path), table, pairs[:, 0] // range_rows, ranges)
    return pack({"oversized": oversized, "pairs": int(pairs.shape[0]), "shuffle_bytes": written})


@dataclass
class ShingleFiles:
    """The shingle sets the signature tasks wrote, one pair of files per range of rows."""

    directory: Path
    starts: np.ndarray  # first row of each signature task's range, ascending
    _maps: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def _files(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k not in self._maps:
            name = f"{k:06d}"
            offsets = np.fromfile(self.directory / f"{name}.i64", dtype="<i8")
            hashes_path = self.directory / f"{name}.u64"
            hashes = (
                np.memmap(hashes_path, dtype="<u8", mode="r")
                if hashes_path.stat().st_size
                else np.zeros(0, "<u8")
            )
            self._maps[k] = (offsets, hashes)
        return self._maps[k]

    def gather(self, rows: np.ndarray) -> Shingles:
        """The shingle sets of `rows` (sorted, unique) as one `Shingles` (document i = rows[i])."""
        task = np.searchsorted(self.starts, rows, side="right") - 1
        sizes = np.zeros(rows.size, np.int64)
        chunks = []
        for k in np.unique(task).tolist():
            sel = np.flatnonzero(task == k)
            offsets, hashes = self._files(k)
            local = rows[sel] - self.starts[k]
            start, stop = offsets[local], offsets[local + 1]
            sizes[sel] = stop - start
            if int((stop - start).sum()):
                within = np.arange(int((stop - start).sum())) - np.repeat(
                    np.cumsum(stop - start) - (stop - start), stop - start
                )
                chunks.append(np.asarray(hashes[np.repeat(start, stop - start) + within]))
        ends = np.zeros(rows.size + 1, np.int64)
        np.cumsum(sizes, out=ends[1:])
        flat = np.concatenate(chunks).astype(np.uint64) if chunks else np.zeros(0, np.uint64)
        return Shingles(offsets=ends, hashes=flat, n_tokens=np.zeros(rows.size, np.int64))


def verify_task(
    files: list[str], index: int, shingles: str, starts: np.ndarray, threshold: float, chunk: int
) -> bytes:
    """Stage 4 for one range of left rows: verified edges, candidate count, histogram."""
    frame = read_bucket([Path(f) for f in files], index)
    store = ShingleFiles(Path(shingles), starts)
    result = verify_pairs(frame, store.gather, threshold, chunk) if frame.height else Verified()
    left, right, jac = result.edges()
    edges = pl.DataFrame(
        {"l": left, "r": right, "j": jac}, schema={"l": pl.Int64, "r": pl.Int64, "j": pl.Float64}
    )
    meta = {"candidates": result.candidates, "histogram": result.histogram.tolist()}
    return pack(meta, {"edges": edges})


def output_task(source: pl.LazyFrame, rows: Range, plan: OutputPlan, path: str) -> bytes:
    """Stage 5 for rows start..start+n: the output rows to a chunk file; their sizes and the
    rows among the examples back to the driver."""
    start, n = rows
    batch = source.slice(start, n).collect()
    kept, sample = plan.mark(batch, start)
    written = write_ipc(Path(path), kept)
    frames = {"sizes": pl.DataFrame({"b": row_bytes(kept).cast(pl.Int64)})}
    if sample is not None:
        frames["sample"] = sample
    return pack({"rows_out": kept.height, "chunk_bytes": written}, frames)


# ---- the driver -----------------------------------------------------------------------------
@dataclass
class NearRun:
    """What the driver tracks: timings, bytes moved per stage, nodes, peak memory of tasks."""

    timings: dict[str, float] = field(default_factory=dict)
    shuffle: dict[str, int] = field(default_factory=dict)
    nodes: set[str] = field(default_factory=set)
    worker_peak: int = 0
    clock: float = field(default_factory=time.perf_counter)

    def results(
        self, ray: Any, jobs: list[Any], stage: str
    ) -> list[tuple[dict[str, Any], dict[str, pl.DataFrame]]]:
        out = [unpack(blob) for blob in get_all(ray, jobs, f"near dedup's {stage}")]
        self.saw([m for m, _ in out])
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - self.clock
        self.clock = now
        return out

    def saw(self, metas: list[dict[str, Any]]) -> None:
        for m in metas:
            self.nodes.add(m["node"])
            self.worker_peak = max(self.worker_peak, int(m["peak_rss"]))

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - self.clock
        self.clock = now


def _ranges(total: int, rows: int) -> list[Range]:
    return [(s, min(rows, total - s)) for s in range(0, total, rows)]


def ray_near_dedup_text(
    engine: Any,
    source: pl.LazyFrame,
    config: NearDedupConfig,
    *,
    out: Path,
    seed: int = 0,
    issue: str = "near_duplicate",
    buckets: int | None = None,
) -> tuple[list[Any], dict[str, Any], pl.DataFrame, pl.DataFrame]:
    """`near_dedup_text_bounded` on Ray (`engine`: a `RayEngine`); same parts, report, tables."""
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
        counts, edges = _edges(ray, run, engine, source, config, seed, shape, ranges, n, spill)
        check_rows(total, counts.pop("nulls"), column)  # type: ignore[arg-type]
        lsh: LshCounts = counts.pop("lsh")  # type: ignore[assignment]
        engine.progress("near_dedup: connected components (driver)")
        plan = OutputPlan.of(edges, config, issue)  # union-find over the edge list, keep rule
        run.lap("components")
        engine.progress("near_dedup: writing the kept rows")
        parts, rows_out, samples = _output(ray, run, engine, source, plan, ranges, spill, out)
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    local.stats.parts_written += len(parts)
    return (parts, *near_report(plan, total, rows_out, samples, config, shape, lsh, seed))


def _edges(
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
) -> tuple[dict[str, object], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Stages 1-4 as tasks -> (counts, edges)."""
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
    engine.progress("near_dedup: verifying candidates (tasks)")
    starts = np.array([s for s, _ in ranges], np.int64)
    chunk = _chunk(spill, ranges, engine.memory_limit / 8)
    jobs = [
        remote(verify_task).remote(
            pair_files, r, str(spill / "shingles"), starts, config.threshold, chunk
        )
        for r in range(n)
    ]
    verified = Verified()
    for meta, frames in run.results(ray, jobs, "verification"):
        e = frames["edges"]
        verified.add(
            Verified(
                [e["l"].to_numpy()], [e["r"].to_numpy()], [e["j"].to_numpy()],
                meta["candidates"], np.asarray(meta["histogram"], np.int64),
            )
        )  # fmt: skip
    lsh.candidates, lsh.histogram = verified.candidates, verified.histogram
    lsh.verified = sum(x.size for x in verified.left)
    return {"nulls": nulls, "lsh": lsh}, all_edges(identical, verified)


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
    run.saw(metas)
    run.lap("parts")
    return parts, sum(m["rows_out"] for m, _ in results), samples


__all__ = ["ray_near_dedup_text"]
