"""Leakage under the Ray engine: the eval sets' index broadcast, one scan task per range of rows.

    parts, report, tables = ray_find_leakage(engine, source, against, config, out=dir, ...)

Every row check of `leakage` is a join whose small side is an eval set (the memory check
`check_fits` has passed before anything is read), so the join is a broadcast:

1. the driver builds the `LeakageScan` on the eval sets once (normalised keys, n-gram hashes,
   MinHash band keys, groups, earliest time) and puts it in Ray's object store once;
2. one task per range of input rows (the local engine's batch rows) reads its rows (a slice of
   the step's LazyFrame), runs `scan.batch` on a fresh copy (`LeakageScan.fresh`), writes the
   rows after the action to a chunk file and returns the copy's `state()`: counts as JSON and
   the marked eval rows and capped tables as Arrow IPC (`ray_files.pack`);
3. the driver merges the states in source order (`LeakageScan.merge`), the part tasks write the
   chunks as parts cut where the local engine cuts (`ray_parts.write_parts`), and target
   leakage (label and feature columns of the whole input) runs on the driver as in the local
   engine; `scan.finish` gives the report and tables.

Same rows, parts, report and tables as `find_leakage_bounded` and the in-memory `find_leakage`.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from tamis.curate.leakage import LeakageConfig
from tamis.curate.leakage_bounded import batch_rows, check_rows_read, finish_scan, start_scan
from tamis.curate.leakage_scan import LeakageScan
from tamis.pipelines.engines.memory import row_bytes
from tamis.pipelines.engines.parts import PartInfo
from tamis.pipelines.engines.ray_env import import_ray
from tamis.pipelines.engines.ray_files import get_all, pack, remote, unpack, write_ipc
from tamis.pipelines.engines.ray_parts import write_parts
from tamis.pipelines.engines.ray_tasks import SIZES

#: prefix of the scan state's frames in a task's result (beside the chunk's row sizes)
STATE = "state:"


def scan_task(source: pl.LazyFrame, rows: tuple[int, int], scan: LeakageScan, path: str) -> bytes:
    """Rows start..start+n through a fresh copy of the scan: the rows after the action to a
    chunk file; the copy's state and the rows' sizes back."""
    start, n = rows
    batch = source.slice(start, n).collect()
    scan.fresh()
    frame = scan.batch(batch, start)
    written = write_ipc(Path(path), frame)
    sizes = pl.DataFrame({"b": row_bytes(frame).cast(pl.Int64)}, schema={"b": pl.Int64})
    counts, frames = scan.state()
    meta = {"rows_in": batch.height, "rows": frame.height, "chunk_bytes": written}
    return pack(
        {**meta, "counts": counts}, {SIZES: sizes, **{STATE + k: v for k, v in frames.items()}}
    )


def ray_find_leakage(
    engine: Any,
    source: pl.LazyFrame,
    against: dict[str, pl.LazyFrame],
    config: LeakageConfig,
    *,
    out: Path,
    seed: int = 0,
    check_fits: Callable[[], None] | None = None,
) -> tuple[list[PartInfo], dict[str, Any], dict[str, pl.DataFrame]]:
    """`find_leakage_bounded` for a `RayEngine` (`engine`): the scan as tasks (module doc)."""
    ray = import_ray()
    local = engine.local
    t0 = time.perf_counter()
    scan, total = start_scan(local, source, against, config, seed, check_fits)
    size = batch_rows(local, source, config)
    local.stats.batch_rows = size
    ranges = [(s, min(size, total - s)) for s in range(0, total, size)]
    spill = Path(engine.spill_root) / f"ray-leakage-{uuid.uuid4().hex[:12]}"
    spill.mkdir(parents=True, exist_ok=True)
    try:
        t1 = time.perf_counter()
        src, index = ray.put(source), ray.put(scan)
        files = [spill / f"{i:06d}.arrow" for i in range(len(ranges))]
        engine.progress(f"leakage: scanning {total:,} rows in {len(ranges):,} tasks")
        jobs = [
            remote(scan_task).remote(src, r, index, str(files[i])) for i, r in enumerate(ranges)
        ]
        results = [unpack(b) for b in get_all(ray, jobs, "leakage's scan tasks")]
        del index
        t2 = time.perf_counter()
        read = sum(int(m["rows_in"]) for m, _ in results)
        local.stats.rows_in += read
        check_rows_read(read, total)
        for meta, frames in results:  # in source order
            engine.nodes.add(meta["node"])
            state = {k[len(STATE) :]: v for k, v in frames.items() if k.startswith(STATE)}
            scan.merge((meta["counts"], state))
        writer = local.part_writer(out)
        sizes = [f[SIZES]["b"].to_numpy() for _, f in results]
        parts, metas = write_parts(ray, files, sizes, out, (writer.max_rows, writer.max_bytes))
        engine.nodes.update(m["node"] for m in metas)
        engine.shuffle_bytes = sum(int(m["chunk_bytes"]) for m, _ in results)
        local.stats.parts_written += len(parts)
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    t3 = time.perf_counter()
    report, tables = finish_scan(local, scan, source, config)
    engine.timings = {
        "index": t1 - t0, "scan": t2 - t1, "parts": t3 - t2, "finish": time.perf_counter() - t3,
    }  # fmt: skip
    return parts, report, tables


__all__ = ["ray_find_leakage", "scan_task"]
