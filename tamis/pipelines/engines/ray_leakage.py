"""Leakage under the Ray engine: the eval sets' index broadcast, one scan task per range of rows.

    parts, report, tables = ray_find_leakage(engine, source, against, config, out=dir, ...)

Every row check of `leakage` is a join whose small side is an eval set (the memory check
`check_fits` has passed before anything is read), so the join is a broadcast:

1. the driver builds the `LeakageScan` on the eval sets once (normalised keys, n-gram hashes,
   MinHash band keys, groups, earliest time) and puts it in Ray's object store once;
2. one task per range of input rows (whole batches of the local engine's batch rows, about
   `TASKS_PER_CPU` tasks per CPU: each task loads the eval side once) reads its rows batch by
   batch (slices of the step's LazyFrame), runs `scan.batch` on a fresh copy of the scan
   (`LeakageScan.fresh`), writes the rows after the action to its chunk file as they come and
   returns the copy's `state()`: counts as JSON, the marked eval rows and capped tables as Arrow
   IPC (`ray_files.pack`);
3. the driver merges the states in source order (`LeakageScan.merge`), the part tasks write the
   chunks as parts cut where the local engine cuts (`ray_parts.write_parts`), and target
   leakage (label and feature columns of the whole input) runs on the driver as in the local
   engine; `scan.finish` gives the report and tables.

Same rows, parts, report and tables as `find_leakage_bounded` and the in-memory `find_leakage`.
"""

from __future__ import annotations

import math
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from tamis.curate.leakage import LeakageConfig
from tamis.curate.leakage_bounded import batch_rows, check_rows_read, finish_scan, start_scan
from tamis.curate.leakage_scan import LeakageScan
from tamis.errors import DataError
from tamis.pipelines.engines.local import read_slices
from tamis.pipelines.engines.memory import row_bytes
from tamis.pipelines.engines.parts import PartInfo
from tamis.pipelines.engines.ray_env import import_ray
from tamis.pipelines.engines.ray_files import get_all, pack, remote, replace_into, unpack
from tamis.pipelines.engines.ray_parts import write_parts
from tamis.pipelines.engines.ray_tasks import SIZES

#: prefix of the scan state's frames in a task's result (beside the chunk's row sizes)
STATE = "state:"
#: scan tasks per CPU of the cluster (each loads the eval side once, then scans its batches)
TASKS_PER_CPU = 4


def scan_task(
    source: pl.LazyFrame, rows: tuple[int, int], batch: int, scan: LeakageScan, path: str
) -> bytes:
    """Rows start..start+n, `batch` rows at a time, through a fresh copy of the scan: the rows
    after the action to one chunk file (a record batch per batch, written as they come); the
    copy's state and the rows' sizes back."""
    start, n = rows
    cpu = time.process_time()
    scan.fresh()
    sizes: list[pl.Series] = []
    read = [0]

    def write(tmp: Path) -> None:
        with pa.OSFile(str(tmp), "wb") as sink:
            writer, schema = None, None
            for frame in read_slices(source.slice(start, n), batch):
                out = scan.batch(frame, start + read[0])
                read[0] += frame.height
                sizes.append(row_bytes(out).cast(pl.Int64))
                table = out.to_arrow()
                if writer is None:
                    schema = table.schema
                    writer = pa.ipc.new_file(sink, schema)
                elif table.schema != schema:
                    table = table.cast(schema)
                writer.write_table(table)
            if writer is None:
                raise DataError(
                    f"rows {start:,} to {start + n - 1:,} of the input gave no rows when read",
                    fix="run `tamis verify` to find a damaged version, then build again",
                )
            writer.close()

    written = replace_into(Path(path), write)
    row_sizes = pl.concat(sizes) if sizes else pl.Series("b", [], pl.Int64)
    counts, frames = scan.state()
    meta: dict[str, Any] = {"rows_in": read[0], "rows": row_sizes.len(), "chunk_bytes": written}
    meta["cpu_seconds"] = time.process_time() - cpu
    sized = {SIZES: pl.DataFrame({"b": row_sizes}, schema={"b": pl.Int64})}
    return pack({**meta, "counts": counts}, {**sized, **{STATE + k: v for k, v in frames.items()}})


def task_ranges(total: int, batch: int, tasks: int) -> list[tuple[int, int]]:
    """(first row, rows) of about `tasks` ranges of whole batches covering `total` rows."""
    per = max(1, math.ceil(math.ceil(total / batch) / max(tasks, 1))) * batch
    return [(s, min(per, total - s)) for s in range(0, total, per)]


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
    ranges = task_ranges(
        total, size, TASKS_PER_CPU * max(1, int(ray.cluster_resources().get("CPU", 1)))
    )
    spill = Path(engine.spill_root) / f"ray-leakage-{uuid.uuid4().hex[:12]}"
    spill.mkdir(parents=True, exist_ok=True)
    try:
        t1 = time.perf_counter()
        src, index = ray.put(source), ray.put(scan)
        files = [spill / f"{i:06d}.arrow" for i in range(len(ranges))]
        engine.progress(f"leakage: scanning {total:,} rows in {len(ranges):,} tasks")
        jobs = [
            remote(scan_task).remote(src, r, size, index, str(files[i]))
            for i, r in enumerate(ranges)
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
        "scan_tasks_cpu": sum(float(m["cpu_seconds"]) for m, _ in results),
    }  # fmt: skip
    return parts, report, tables


__all__ = ["ray_find_leakage", "scan_task", "task_ranges"]
