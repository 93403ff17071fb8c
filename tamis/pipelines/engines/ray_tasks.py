"""The Ray engine's tasks for map and keyed steps: they read and write their rows themselves.

- `map_task`: rows start..start+n of the input (a slice of the step's LazyFrame, read by the
  task) through `step.map_batch`, written to a chunk file;
- `bucket_task`: rows start..start+n numbered (`ROW`) and routed to the step's key buckets, in
  one file with one record batch per bucket (the shuffle's map side, `ray_files.write_buckets`);
- `reduce_task`: bucket b of every `bucket_task` file, sorted by `ROW`, through `step.reduce`;
  its output rows routed to ranges of `ROW` in one file (one record batch per range);
- `range_task`: range r of every `reduce_task` file, sorted by `ROW` (source order), to a chunk.

A step that only selects rows (`KeyedStep.key_columns`) moves less: `bucket_task` reads its range
whole once, sends back every row's size and writes only the key columns and `ROW`; `select_task`
reduces a bucket and sends back just the kept rows' `ROW` (and the columns the step adds); the
parts are then written from the input itself (`ray_parts.write_selected_parts`), and `rows_task`
reads the few whole rows the report shows (`KeyedStep.report_rows`).

The chunks then become parts with the local engine's boundaries (`ray_parts`). Every task
returns `ray_files.pack` bytes: counts as JSON, tables and row sizes as Arrow IPC.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tamis.pipelines.engines.local import BUCKET_SEED
from tamis.pipelines.engines.memory import row_bytes
from tamis.pipelines.engines.ray_files import pack, read_bucket, write_buckets, write_ipc
from tamis.pipelines.steps.base import ROW, BatchResult, KeyedStep, MapStep, StepContext

TABLE = "table:"
SIZES = "sizes"
#: a `select_task`'s kept rows: `ROW` and the columns the step adds
KEPT = "kept"

Range = tuple[int, int]  # (first row, rows)


def noop(*args: Any, **kwargs: Any) -> None:
    return None


def ready() -> bool:
    """A worker's first task, at the session's start: this module and `ray_parts` (Polars, NumPy,
    the local engine's modules) imported, so a step's first tasks do not pay for it."""
    import tamis.pipelines.engines.ray_parts  # noqa: F401

    return True


def task_ctx(ctx: StepContext) -> StepContext:
    """The context a task gets: the driver's progress display stays on the driver."""
    return dataclasses.replace(ctx, progress=noop)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def packed(
    result: BatchResult, frames: dict[str, pl.DataFrame] | None = None, **meta: Any
) -> bytes:
    """A batch's or bucket's counts (JSON) and report tables (IPC), with `meta` and `frames`."""
    stats = {k: _plain(v) for k, v in result.stats.items()}
    json.dumps(stats)  # counts must be plain numbers
    tables = {TABLE + k: t for k, t in result.tables.items()}
    return pack({**meta, "stats": stats}, {**tables, **(frames or {})})


def result_of(meta: dict[str, Any], frames: dict[str, pl.DataFrame]) -> BatchResult:
    """`packed`'s counts and tables back as a `BatchResult` (no rows)."""
    tables = {k[len(TABLE) :]: v for k, v in frames.items() if k.startswith(TABLE)}
    return BatchResult(frame=pl.DataFrame(), stats=meta["stats"], tables=tables)


def _sizes(frame: pl.DataFrame) -> pl.DataFrame:
    """Each row's deterministic size (`row_bytes`), for the part cuts."""
    return pl.DataFrame({"b": row_bytes(frame).cast(pl.Int64)}, schema={"b": pl.Int64})


def _chunk(frame: pl.DataFrame, path: str, result: BatchResult, **meta: Any) -> bytes:
    """Write output rows to a chunk file; their sizes (for the part cuts) go back with the
    counts and tables."""
    written = write_ipc(Path(path), frame)
    return packed(result, {SIZES: _sizes(frame)}, rows=frame.height, chunk_bytes=written, **meta)


def numbered(batch: pl.DataFrame, start: int) -> pl.DataFrame:
    """A batch of the input's rows from `start` on, numbered in `ROW`."""
    return batch.with_row_index(ROW, offset=start).with_columns(pl.col(ROW).cast(pl.UInt64))


def map_task(
    source: pl.LazyFrame,
    rows: Range,
    step: MapStep[Any],
    params: Any,
    plan: Any,
    ctx: Any,
    path: str,
) -> bytes:
    start, n = rows
    batch = source.slice(start, n).collect()
    result = step.map_batch(batch, params, plan, ctx)
    return _chunk(result.frame, path, result, rows_in=batch.height)


def bucket_task(
    source: pl.LazyFrame,
    rows: Range,
    step: KeyedStep[Any],
    name: str,
    params: Any,
    plan: Any,
    buckets: int,
    path: str,
    columns: list[str] | None = None,
) -> bytes:
    """Number the range's rows and route them to the key's buckets; with `columns` (a selecting
    step), only those and `ROW`, and every row's size goes back."""
    start, n = rows
    batch = source.slice(start, n).collect()
    frames = {SIZES: _sizes(batch)} if columns is not None else {}
    rows_out = numbered(batch, start)
    if columns is not None:
        rows_out = rows_out.select(ROW, *columns)
    keys = step.key(rows_out, name, params, plan)
    bucket = (keys.hash(seed=BUCKET_SEED) % buckets).cast(pl.Int64).to_numpy()
    written = write_buckets(Path(path), rows_out, bucket, buckets)
    return pack({"rows_in": batch.height, "shuffle_bytes": written}, frames)


def reduce_task(
    files: list[str],
    bucket: int,
    step: KeyedStep[Any],
    name: str,
    params: Any,
    plan: Any,
    ctx: Any,
    ranges: tuple[int, int],
    path: str,
) -> bytes:
    """Reduce one bucket (none when it got no rows, as the local engine skips it)."""
    frame = read_bucket([Path(f) for f in files], bucket)
    if not frame.height:
        return pack({"empty": True, "stats": {}})
    result = step.reduce({name: frame.sort(ROW)}, params, plan, ctx)
    out = result.frame
    range_rows, n_ranges = ranges
    where = (out[ROW].cast(pl.Int64) // range_rows).to_numpy() if out.height else np.zeros(0, int)
    written = write_buckets(Path(path), out, where.astype(np.int64), n_ranges)
    return packed(result, empty=False, shuffle_bytes=written)


def select_task(
    files: list[str],
    bucket: int,
    step: KeyedStep[Any],
    name: str,
    params: Any,
    plan: Any,
    ctx: Any,
    columns: list[str],
) -> bytes:
    """Reduce one bucket of key columns (a selecting step, `KeyedStep.key_columns`); the kept
    rows' `ROW` and the step's new columns go back with the counts and tables."""
    frame = read_bucket([Path(f) for f in files], bucket)
    if not frame.height:
        return pack({"empty": True, "stats": {}})
    result = step.reduce({name: frame.sort(ROW)}, params, plan, ctx)
    out = result.frame
    kept = out.select(ROW, *[c for c in out.columns if c != ROW and c not in columns])
    return packed(result, {KEPT: kept}, empty=False)


def rows_task(source: pl.LazyFrame, rows: list[int]) -> bytes:
    """The input's rows at these positions, whole, with `ROW` (Int64) first."""
    frames = [numbered(source.slice(r, 1).collect(), r) for r in sorted(set(rows))]
    if not frames:
        frames = [numbered(source.head(0).collect(), 0)]
    frame = pl.concat(frames, how="vertical").with_columns(pl.col(ROW).cast(pl.Int64))
    return pack({}, {KEPT: frame})


def range_task(files: list[str], index: int, path: str) -> bytes:
    """One range of `ROW` from every reduce output, in source order, to a chunk file."""
    frame = read_bucket([Path(f) for f in files], index)
    frame = frame.sort(ROW).drop(ROW) if ROW in frame.columns else frame
    return _chunk(frame, path, BatchResult(frame=pl.DataFrame()))


__all__ = [
    "bucket_task",
    "map_task",
    "noop",
    "numbered",
    "range_task",
    "ready",
    "reduce_task",
    "result_of",
    "rows_task",
    "select_task",
    "task_ctx",
]
