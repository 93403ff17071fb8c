"""The Ray engine's tasks for map and keyed steps: they read and write their rows themselves.

- `map_task`: rows start..start+n of the input (a slice of the step's LazyFrame, read by the
  task) through `step.map_batch`, written to a chunk file;
- `bucket_task`: rows start..start+n numbered (`ROW`) and routed to the step's key buckets, in
  one file with one record batch per bucket (the shuffle's map side, `ray_files.write_buckets`);
- `reduce_task`: bucket b of every `bucket_task` file, sorted by `ROW`, through `step.reduce`;
  its output rows routed to ranges of `ROW` in one file (one record batch per range);
- `range_task`: range r of every `reduce_task` file, sorted by `ROW` (source order), to a chunk.

A step that only selects rows (`KeyedStep.key_columns`) moves less: `bucket_task` writes only the
key columns and `ROW`; `select_task` reduces a bucket and routes just the kept rows' `ROW` (and
the columns the step adds) to the input's ranges; `pick_task` reads its input range again (a
slice of the LazyFrame: its own row groups) and keeps the rows named there, in source order, into
a chunk, with the few whole rows the report shows (`KeyedStep.report_rows`).

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

from tamis.errors import StepError
from tamis.pipelines.engines.local import BUCKET_SEED
from tamis.pipelines.engines.memory import row_bytes
from tamis.pipelines.engines.ray_files import pack, read_bucket, write_buckets, write_ipc
from tamis.pipelines.steps.base import ROW, BatchResult, KeyedStep, MapStep, StepContext

TABLE = "table:"
SIZES = "sizes"
#: a `pick_task`'s whole rows for the report (`KeyedStep.report_rows`)
PICKED = "picked"

Range = tuple[int, int]  # (first row, rows)


def noop(*args: Any, **kwargs: Any) -> None:
    return None


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


def _chunk(
    frame: pl.DataFrame,
    path: str,
    result: BatchResult,
    frames: dict[str, pl.DataFrame] | None = None,
    **meta: Any,
) -> bytes:
    """Write output rows to a chunk file; their sizes (for the part cuts) go back with the
    counts and tables (and `frames`)."""
    written = write_ipc(Path(path), frame)
    sizes = pl.DataFrame({"b": row_bytes(frame).cast(pl.Int64)}, schema={"b": pl.Int64})
    return packed(
        result, {SIZES: sizes, **(frames or {})}, rows=frame.height, chunk_bytes=written, **meta
    )


def _numbered(source: pl.LazyFrame, rows: Range, columns: list[str] | None = None) -> pl.DataFrame:
    """Rows start..start+n of the input (only `columns` when given), numbered in `ROW`."""
    start, n = rows
    lf = source.select(columns) if columns is not None else source
    batch = lf.slice(start, n).collect()
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
    """Number the range's rows and route them (only `columns` and `ROW`, when given) to the
    key's buckets."""
    numbered = _numbered(source, rows, columns)
    keys = step.key(numbered, name, params, plan)
    bucket = (keys.hash(seed=BUCKET_SEED) % buckets).cast(pl.Int64).to_numpy()
    written = write_buckets(Path(path), numbered, bucket, buckets)
    return pack({"rows_in": numbered.height, "shuffle_bytes": written})


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
    starts: np.ndarray,
    path: str,
) -> bytes:
    """Reduce one bucket of key columns (a selecting step, `KeyedStep.key_columns`) and route the
    kept rows' `ROW` and the step's new columns to the input's ranges (`starts`: their first
    rows), one record batch per range."""
    frame = read_bucket([Path(f) for f in files], bucket)
    if not frame.height:
        return pack({"empty": True, "stats": {}})
    result = step.reduce({name: frame.sort(ROW)}, params, plan, ctx)
    out = result.frame
    kept = out.select(ROW, *[c for c in out.columns if c != ROW and c not in columns])
    position = kept[ROW].cast(pl.Int64).to_numpy()
    where = np.searchsorted(starts, position, side="right").astype(np.int64) - 1
    written = write_buckets(Path(path), kept, where, len(starts))
    return packed(result, empty=False, shuffle_bytes=written)


def pick_task(
    source: pl.LazyFrame, rows: Range, files: list[str], index: int, report: list[int], path: str
) -> bytes:
    """Range `index` of the input read again, whole, keeping the rows (and new columns) the
    `select_task`s routed here, in source order, to a chunk; the rows named in `report` go back
    whole (`ROW` Int64 first)."""
    numbered = _numbered(source, rows)
    if numbered.height != rows[1]:
        raise StepError(
            f"the input gave {numbered.height:,} of rows {rows[0]:,}+{rows[1]:,} when read again",
            fix="run `tamis verify` to find a damaged version, then build again",
        )
    kept = read_bucket([Path(f) for f in files], index)
    if kept.width > 1:  # the step's new columns joined on
        frame = numbered.join(kept, on=ROW, how="inner", maintain_order="left")
    else:  # a plain selection
        frame = numbered.join(kept, on=ROW, how="semi", maintain_order="left")
    frame = frame.drop(ROW)
    wanted = pl.Series(ROW, report, dtype=pl.UInt64)
    picked = numbered.filter(pl.col(ROW).is_in(wanted.implode()))
    picked = picked.with_columns(pl.col(ROW).cast(pl.Int64))
    return _chunk(frame, path, BatchResult(frame=pl.DataFrame()), {PICKED: picked})


def range_task(files: list[str], index: int, path: str) -> bytes:
    """One range of `ROW` from every reduce output, in source order, to a chunk file."""
    frame = read_bucket([Path(f) for f in files], index)
    frame = frame.sort(ROW).drop(ROW) if ROW in frame.columns else frame
    return _chunk(frame, path, BatchResult(frame=pl.DataFrame()))


__all__ = [
    "bucket_task",
    "map_task",
    "noop",
    "pick_task",
    "range_task",
    "reduce_task",
    "result_of",
    "select_task",
    "task_ctx",
]
