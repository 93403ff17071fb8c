"""The bounded-memory local engine: runs a step by its kind within a memory limit.

- `map`: batches stream from the input's parts (or a lazily scanned source) through `map_batch`
  into the output's parts; memory holds one batch and one open part.
- `keyed` (`engines.keyed`): rows hash-partitioned by key into buckets spilled as Arrow IPC in the
  store's tmp dir, reduced bucket by bucket, written back in source order range by range; the
  step's row-ordered report tables are spilled and assembled the same way.
- The limit covers the whole process: batches, buckets and ranges are sized from the `budget`,
  the limit minus the memory the process held when the engine was made (`baseline`).
- `global`: the input is materialised and `run` is called, after a check that its estimated size
  fits the limit; a step that cannot fit fails before it starts, naming the step, the estimate and
  the fix.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tamis.errors import StepError
from tamis.pipelines.engines.keyed import BUCKET_SEED as BUCKET_SEED  # re-exported (Ray tasks)
from tamis.pipelines.engines.keyed import KeyedRun
from tamis.pipelines.engines.memory import (
    WORKING_FACTOR,
    format_size,
    process_memory,
    row_bytes,
    working_budget,
)
from tamis.pipelines.engines.parts import PART_MAX_BYTES, PART_MAX_ROWS, PartInfo, PartWriter
from tamis.pipelines.engines.spill_files import read_spill_dir
from tamis.pipelines.steps.base import (
    MAIN_OUTPUT,
    BatchResult,
    KeyedStep,
    MapStep,
    Step,
    StepContext,
    StepOutput,
)

#: batches read from the input at a time (one slice of the scan)
READ_BATCHES = 4


@dataclass
class EngineStats:
    """What the engine reports as progress and in the step's report (`engine`)."""

    rows_in: int = 0
    bytes_in: int = 0
    parts_written: int = 0
    spill_bytes: int = 0
    peak_spill_bytes: int = 0
    buckets: int = 0
    #: spill files written (a keyed step writes one per bucket and per output range)
    spill_files: int = 0
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
    #: the process's resident memory when the engine was made (interpreter, libraries, caller's
    #: data): part of what the limit allows, so batches and buckets are sized from the rest
    baseline: int = field(default_factory=process_memory)
    _baseline_measured: bool = field(default=False, repr=False)

    @property
    def budget(self) -> int:
        """Bytes the engine sizes its batches, buckets and ranges from: the limit minus the
        baseline (at least a quarter of the limit)."""
        return working_budget(self.memory_limit, self.baseline)

    @property
    def local(self) -> BoundedEngine:
        """The engine that streams sources on this machine (itself; Ray's keeps one too)."""
        return self

    def use(self, spill_root: Path, progress: Callable[..., None]) -> None:
        """Point the engine at one step's spill dir and progress line (the runner, per step).

        The first call re-measures the baseline: by then the build has loaded its step types
        (their libraries are part of the process, not of the data)."""
        self.spill_root = spill_root
        self.progress = progress
        if not self._baseline_measured:
            self._baseline_measured = True
            self.baseline = max(self.baseline, process_memory())

    # ---- batches -------------------------------------------------------------------------
    def pick_batch_rows(self, source: pl.LazyFrame) -> int:
        return self.rows_for(mean_row_bytes(source))

    def rows_for(self, per_row: float) -> int:
        """Rows per batch for rows of `per_row` bytes: a batch and its working copies take about
        1/32 of the budget (`batch_rows` when set)."""
        if self.batch_rows:
            return self.batch_rows
        target = self.budget / 32 / (max(per_row, 1.0) * WORKING_FACTOR)
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
            f"build so far: {self.stats.rows_in:,} rows read, "
            f"{self.stats.rows_in / secs:,.0f} rows/s, "
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
        check_read("input", expected, read)
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
        """Partition by key into spilled buckets, reduce bucket by bucket, write in source order
        (`engines.keyed`)."""
        sources = {k: v for k, v in inputs.items() if isinstance(v, pl.LazyFrame)}
        return KeyedRun(self, step, sources, params, ctx, out).run()

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

    # ---- spill accounting -----------------------------------------------------------------
    def add_spill(self, nbytes: int) -> None:
        """Count bytes written to (or, negative, deleted from) the spill dir."""
        self.stats.spill_bytes += nbytes
        self.stats.peak_spill_bytes = max(self.stats.peak_spill_bytes, self.stats.spill_bytes)

    def count_spill_file(self) -> None:
        self.stats.spill_files += 1

    def _spill(self, frame: pl.DataFrame, path: Path) -> None:
        """Write one frame as a spill file (Arrow IPC, lz4) and count it."""
        frame.write_ipc(path, compression="lz4")
        self.count_spill_file()
        self.add_spill(path.stat().st_size)

    def drop_spill(self, directory: Path) -> None:
        """Delete a finished spill directory (always inside the store's tmp dir)."""
        if directory.exists():
            self.add_spill(-sum(f.stat().st_size for f in directory.glob("*.arrow")))
            shutil.rmtree(directory, ignore_errors=True)

    _drop = drop_spill


def read_slices(source: pl.LazyFrame, rows: int) -> Iterator[pl.DataFrame]:
    """A LazyFrame's rows in order, `rows` at a time, reading slices of READ_BATCHES batches
    (a bounded read: `collect_batches` buffers ahead of a slow consumer)."""
    total = int(source.select(pl.len()).collect().item())
    chunk = rows * READ_BATCHES
    for start in range(0, total, chunk):
        for batch in source.slice(start, chunk).collect().iter_slices(rows):
            if batch.height:
                yield batch


def check_read(name: str, expected: int, read: int) -> None:
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


def add_result(
    merged: BatchResult, result: BatchResult, tables: dict[str, list[pl.DataFrame]]
) -> None:
    """Add a batch's (or bucket's) counts to `merged` and collect its tables."""
    for k, v in result.stats.items():
        merged.stats[k] = merged.stats.get(k, 0) + v
    for k, t in result.tables.items():
        tables.setdefault(k, []).append(t)


_add = add_result  # the Ray engine's name for it


def _read_dir(directory: Path, schema: pl.Schema) -> pl.DataFrame:
    return read_spill_dir(directory, schema)
