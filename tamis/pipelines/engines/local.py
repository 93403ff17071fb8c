"""The bounded-memory local engine: runs a step by its kind within a memory limit.

- `map`: batches stream from the input's parts (or a lazily scanned source) through `map_batch`
  into the output's parts; memory holds one batch and one open part.
- `keyed`: pass 1 streams every input, numbers its rows (`ROW`, per input from 0), computes the
  step's key and appends each row to one of `buckets` spill files (Arrow IPC in the store's tmp
  dir) by a hash of its key; pass 2 reduces bucket by bucket and routes the output rows to
  ranges of `ROW`; pass 3 sorts each range by `ROW` and writes the parts. The output is in source
  order and the keep rules choose by `ROW`, so it never depends on the bucket count.
- `global`: the input is materialised and `run` is called, after a check that its estimated size
  fits the limit; a step that cannot fit fails before it starts, naming the step, the estimate and
  the fix.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tamis.errors import StepError
from tamis.pipelines.engines.memory import WORKING_FACTOR, format_size, row_bytes
from tamis.pipelines.engines.parts import PART_MAX_BYTES, PART_MAX_ROWS, PartInfo, PartWriter
from tamis.pipelines.steps.base import (
    MAIN_OUTPUT,
    ROW,
    BatchResult,
    KeyedStep,
    MapStep,
    Step,
    StepContext,
    StepOutput,
)

_BUCKET = "__tamis_bucket"
_RANGE = "__tamis_range"
#: batches read from the input at a time (one slice of the scan)
READ_BATCHES = 4
#: seed of the bucket hash (any fixed value: buckets never change the result, only the memory)
BUCKET_SEED = 0x5EED


@dataclass
class EngineStats:
    """What the engine reports as progress and in the step's report (`engine`)."""

    rows_in: int = 0
    bytes_in: int = 0
    parts_written: int = 0
    spill_bytes: int = 0
    peak_spill_bytes: int = 0
    buckets: int = 0
    batch_rows: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "bytes_in": self.bytes_in,
            "parts_written": self.parts_written,
            "spill_bytes": self.peak_spill_bytes,
            "buckets": self.buckets,
            "batch_rows": self.batch_rows,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class BoundedEngine:
    """Runs steps within `memory_limit` bytes, spilling to `spill_root` (inside the store's tmp)."""

    memory_limit: int
    spill_root: Path
    progress: Callable[..., None] = lambda *a, **k: None
    #: rows per batch; None picks it from the limit and the rows' size
    batch_rows: int | None = None
    part_max_rows: int | None = None
    part_max_bytes: int | None = None
    stats: EngineStats = field(default_factory=EngineStats)
    #: when the engine started (the rates are over everything it ran: a whole build)
    started: float = field(default_factory=time.perf_counter)

    @property
    def local(self) -> BoundedEngine:
        """The engine that streams sources on this machine (itself; Ray's keeps one too)."""
        return self

    def use(self, spill_root: Path, progress: Callable[..., None]) -> None:
        """Point the engine at one step's spill dir and progress line (the runner, per step)."""
        self.spill_root = spill_root
        self.progress = progress

    # ---- batches -------------------------------------------------------------------------
    def pick_batch_rows(self, source: pl.LazyFrame) -> int:
        return self.rows_for(mean_row_bytes(source))

    def rows_for(self, per_row: float) -> int:
        """Rows per batch for rows of `per_row` bytes: a batch and its working copies take about
        1/32 of the limit (`batch_rows` when set)."""
        if self.batch_rows:
            return self.batch_rows
        target = self.memory_limit / 32 / (max(per_row, 1.0) * WORKING_FACTOR)
        return int(min(max(target, 1000), 1_000_000))

    def batches(self, source: pl.LazyFrame, rows: int) -> Iterator[pl.DataFrame]:
        """The input's rows in order, `rows` at a time. Read by slices of READ_BATCHES batches
        (a slice of a Parquet scan reads only its row groups): Polars' `collect_batches` runs
        ahead of a slower consumer and buffers the whole input."""
        for batch in read_slices(source, rows):
            self.count(batch)
            yield batch

    def count(self, batch: pl.DataFrame) -> None:
        """Add a batch read to the totals and report progress: rows and bytes per second over
        the engine's life, parts written, spill size."""
        self.stats.rows_in += batch.height
        self.stats.bytes_in += int(batch.estimated_size())
        secs = max(time.perf_counter() - self.started, 1e-9)
        self.stats.seconds = secs
        self.progress(
            f"{self.stats.rows_in:,} rows, {self.stats.rows_in / secs:,.0f} rows/s, "
            f"{format_size(self.stats.bytes_in / secs)}/s, "
            f"{self.stats.parts_written} parts, spill {format_size(self.stats.spill_bytes)}"
        )

    def part_writer(self, directory: Path) -> PartWriter:
        """A writer of parts of the engine's part bounds into `directory`."""
        return PartWriter(
            directory,
            max_rows=self.part_max_rows or PART_MAX_ROWS,
            max_bytes=self.part_max_bytes or PART_MAX_BYTES,
            on_part=self._part_written,
        )

    def _part_written(self, part: PartInfo) -> None:
        self.stats.parts_written += 1

    # ---- kinds ---------------------------------------------------------------------------
    def run_step(
        self,
        step: Step[Any],
        inputs: dict[str, Any],
        params: Any,
        ctx: StepContext,
        out: Path,
        *,
        estimated_bytes: int | None = None,
        rows: int | None = None,
    ) -> tuple[list[PartInfo], StepOutput]:
        """Run a step by its kind; the main output goes to parts in `out`.

        A step with stages of several kinds (near dedup: signatures map, band grouping keyed,
        components global over the small edge list) provides `run_bounded(engine, inputs, params,
        ctx, out)` itself and is handed the engine. A global step is checked against the limit
        (when its input size is known) and materialised; its other outputs stay frames.
        """
        custom = getattr(step, "run_bounded", None)
        if custom is not None:
            parts, output = custom(self, inputs, params, ctx, out)
            return parts, output
        kind = step.kind_for(params)
        if kind == "map" and isinstance(step, MapStep):
            return self.run_map(step, inputs, params, ctx, out)
        if kind == "keyed" and isinstance(step, KeyedStep):
            return self.run_keyed(step, inputs, params, ctx, out)
        if estimated_bytes is not None:
            self.check_global(step, estimated_bytes, rows or 0, ctx)
        output = step.run(inputs, params, ctx)
        main = output.frames.get(MAIN_OUTPUT)
        if main is None:
            return [], output
        if isinstance(main, pl.DataFrame):
            return self.part_writer(out).close_with(main), output
        writer = self.part_writer(out)  # a lazy output is streamed into parts, never collected
        for batch in read_slices(main, self.pick_batch_rows(main)):
            writer.write(batch)
        return writer.close(main.collect_schema()), output

    def run_map(
        self, step: MapStep[Any], inputs: dict[str, Any], params: Any, ctx: StepContext, out: Path
    ) -> tuple[list[PartInfo], StepOutput]:
        source: pl.LazyFrame = inputs["input"]
        plan = step.prepare(source, params, ctx)
        rows = self.pick_batch_rows(source)
        self.stats.batch_rows = rows
        writer = self.part_writer(out)
        merged = BatchResult(frame=pl.DataFrame())
        tables: dict[str, list[pl.DataFrame]] = {}
        schema: pl.Schema | None = None
        expected = source.select(pl.len()).collect().item()
        read = 0
        for batch in self.batches(source, rows):
            read += batch.height
            result = step.map_batch(batch, params, plan, ctx)
            schema = result.frame.schema
            writer.write(result.frame)
            _add(merged, result, tables)
        _check_read("input", expected, read)
        if schema is None:  # no rows: the schema of the mapped empty input
            empty = source.head(0).collect()
            schema = step.map_batch(empty, params, plan, ctx).frame.schema
        merged.frame = pl.DataFrame(schema=schema)
        merged.tables = {k: pl.concat(v, how="vertical_relaxed") for k, v in tables.items()}
        parts = writer.close(schema)
        report = step.finish(merged, params, plan, ctx)
        return parts, StepOutput(frames={}, report=report, tables=merged.tables)

    def run_keyed(
        self, step: KeyedStep[Any], inputs: dict[str, Any], params: Any, ctx: StepContext, out: Path
    ) -> tuple[list[PartInfo], StepOutput]:
        sources = {k: v for k, v in inputs.items() if isinstance(v, pl.LazyFrame)}
        plan = step.prepare(sources, params, ctx)
        spill = self.spill_root / "keyed"
        spill.mkdir(parents=True, exist_ok=True)
        try:
            n_buckets, main_rows, schemas = self._partition(step, sources, params, plan, spill)
            self.stats.buckets = n_buckets
            range_rows = self._range_rows(sources.get("input"), main_rows)
            merged = BatchResult(frame=pl.DataFrame())
            tables: dict[str, list[pl.DataFrame]] = {}
            out_schema: pl.Schema | None = None
            for bucket in range(n_buckets):
                if not any((spill / name / f"b{bucket}").exists() for name in sources):
                    continue  # no rows hashed here (more buckets than keys)
                frames = {
                    name: _read_bucket(spill, name, bucket, schemas[name]) for name in sources
                }
                self.progress(f"reducing bucket {bucket + 1}/{n_buckets}")
                result = step.reduce(frames, params, plan, ctx)
                out_schema = result.frame.schema
                self._route_ranges(result.frame, spill / "out", bucket, range_rows)
                _add(merged, result, tables)
                for name in sources:
                    self._drop(spill / name / f"b{bucket}")
            writer = self.part_writer(out)
            schema = out_schema if out_schema is not None else pl.Schema()
            n_ranges = math.ceil(max(main_rows, 1) / range_rows)
            for r in range(n_ranges):
                frame = _read_dir(spill / "out" / f"r{r}", schema)
                if frame.height:
                    writer.write(frame.sort(ROW).drop(ROW))
                self._drop(spill / "out" / f"r{r}")
            final_schema = pl.Schema({k: v for k, v in schema.items() if k != ROW})
            parts = writer.close(final_schema)
        finally:
            shutil.rmtree(spill, ignore_errors=True)
        merged.frame = pl.DataFrame(schema=final_schema)
        merged.tables = {k: pl.concat(v, how="vertical_relaxed") for k, v in tables.items()}
        report = step.finish(merged, params, plan, ctx)
        return parts, StepOutput(frames={}, report=report, tables=merged.tables)

    def check_global(
        self, step: Step[Any], estimated_bytes: int, rows: int, ctx: StepContext
    ) -> None:
        """Refuse a global step whose input will not fit, before it starts."""
        need = int(estimated_bytes * WORKING_FACTOR)
        if need > self.memory_limit:
            raise StepError(
                f"step type '{step.name}' needs its whole input in memory: about "
                f"{format_size(need)} for {rows:,} rows ({format_size(estimated_bytes)} of data), "
                f"over the memory limit of {format_size(self.memory_limit)}",
                step=ctx.step,
                fix="put a `sample` step before it (e.g. `use: sample` with `n:`), use the step's "
                "own subsampling param if it has one, or raise --memory-limit",
            )

    # ---- keyed internals -----------------------------------------------------------------
    def _partition(
        self,
        step: KeyedStep[Any],
        sources: dict[str, pl.LazyFrame],
        params: Any,
        plan: Any,
        spill: Path,
    ) -> tuple[int, int, dict[str, pl.Schema]]:
        total = 0
        estimates = {}
        for name, lf in sources.items():
            rows = lf.select(pl.len()).collect().item()
            per_row = mean_row_bytes(lf)
            estimates[name] = rows
            total += int(rows * per_row)
        # a bucket (all inputs' rows of its keys) plus its output must fit a quarter of the limit
        n_buckets = max(1, math.ceil(total * WORKING_FACTOR / (self.memory_limit / 4)))
        schemas: dict[str, pl.Schema] = {}
        main_rows = 0
        for name, lf in sources.items():
            rows = self.batch_rows or self.pick_batch_rows(lf)
            self.stats.batch_rows = rows
            offset = 0
            for seq, batch in enumerate(self.batches(lf, rows)):
                batch = batch.with_row_index(ROW, offset=offset).with_columns(
                    pl.col(ROW).cast(pl.UInt64)
                )
                offset += batch.height
                schemas[name] = batch.schema
                keys = step.key(batch, name, params, plan)
                bucket = (keys.hash(seed=BUCKET_SEED) % n_buckets).alias(_BUCKET)
                for (b,), part in (
                    batch.with_columns(bucket)
                    .partition_by(_BUCKET, as_dict=True, include_key=False)
                    .items()
                ):
                    d = spill / name / f"b{b}"
                    d.mkdir(parents=True, exist_ok=True)
                    self._spill(part, d / f"{seq:08d}.arrow")
            _check_read(name, estimates[name], offset)
            if name not in schemas:
                schemas[name] = (
                    lf.head(0)
                    .collect()
                    .with_row_index(ROW)
                    .with_columns(pl.col(ROW).cast(pl.UInt64))
                    .schema
                )
            if name == "input":
                main_rows = offset
        return n_buckets, main_rows, schemas

    def _range_rows(self, source: pl.LazyFrame | None, rows: int) -> int:
        if source is None or rows == 0:
            return max(rows, 1)
        per_row = mean_row_bytes(source)
        fit = int(self.memory_limit / 4 / (per_row * WORKING_FACTOR))
        return max(1000, min(rows, fit))

    def _spill(self, frame: pl.DataFrame, path: Path) -> None:
        frame.write_ipc(path, compression="lz4")
        self.stats.spill_bytes += path.stat().st_size
        self.stats.peak_spill_bytes = max(self.stats.peak_spill_bytes, self.stats.spill_bytes)

    def _drop(self, directory: Path) -> None:
        """Delete a finished spill directory (always inside the store's tmp dir)."""
        if directory.exists():
            self.stats.spill_bytes -= sum(f.stat().st_size for f in directory.glob("*.arrow"))
            shutil.rmtree(directory, ignore_errors=True)

    def _route_ranges(self, frame: pl.DataFrame, out: Path, bucket: int, range_rows: int) -> None:
        if not frame.height:
            return
        ranged = frame.with_columns((pl.col(ROW) // range_rows).alias(_RANGE))
        for (r,), part in ranged.partition_by(_RANGE, as_dict=True, include_key=False).items():
            d = out / f"r{r}"
            d.mkdir(parents=True, exist_ok=True)
            self._spill(part, d / f"b{bucket:06d}.arrow")


def read_slices(source: pl.LazyFrame, rows: int) -> Iterator[pl.DataFrame]:
    """A LazyFrame's rows in order, `rows` at a time, reading slices of READ_BATCHES batches
    (a bounded read: `collect_batches` buffers ahead of a slow consumer)."""
    total = int(source.select(pl.len()).collect().item())
    chunk = rows * READ_BATCHES
    for start in range(0, total, chunk):
        for batch in source.slice(start, chunk).collect().iter_slices(rows):
            if batch.height:
                yield batch


def _check_read(name: str, expected: int, read: int) -> None:
    """A streamed input must give all its rows: a reader that crashes inside a streaming scan
    ends the stream early instead of raising, which must never pass as a shorter input."""
    if read != expected:
        raise StepError(
            f"input '{name}' gave {read:,} of its {expected:,} rows when streamed: a part "
            "could not be read",
            fix="run `tamis verify` to find a damaged version, then build again",
        )


def mean_row_bytes(source: pl.LazyFrame, sample: int = 2000) -> float:
    """The mean deterministic row size of the first rows (64 when there are none)."""
    head = source.head(sample).collect()
    if not head.height:
        return 64.0
    return max(float(row_bytes(head).cast(pl.Float64).sum()) / head.height, 1.0)


def _add(merged: BatchResult, result: BatchResult, tables: dict[str, list[pl.DataFrame]]) -> None:
    for k, v in result.stats.items():
        merged.stats[k] = merged.stats.get(k, 0) + v
    for k, t in result.tables.items():
        tables.setdefault(k, []).append(t)


def _read_dir(directory: Path, schema: pl.Schema) -> pl.DataFrame:
    files = sorted(directory.glob("*.arrow")) if directory.exists() else []
    if not files:
        return pl.DataFrame(schema=schema)
    return pl.concat([pl.read_ipc(f) for f in files], how="vertical")


def _read_bucket(spill: Path, name: str, bucket: int, schema: pl.Schema) -> pl.DataFrame:
    return _read_dir(spill / name / f"b{bucket}", schema)
