"""A keyed step out of core: partition by key into spilled buckets, reduce bucket by bucket, write
the output (and the step's row-ordered tables) back in source order range by range.

- pass 1 streams every input, numbers its rows (`ROW`, per input from 0), computes the step's key
  and appends each row to its bucket's spill file (one growing Arrow IPC file per bucket);
- pass 2 reads one bucket at a time, reduces it, and appends the output rows to the spill file of
  their range of `ROW` (one file per range). The step's `row_tables` (table name -> a column of
  row positions, e.g. dedup's `clusters` by `cluster_id`) are routed the same way, so no report
  table piles up in memory across buckets; the other tables are small (examples) and kept;
- pass 3 sorts each range by `ROW` and writes the parts; each row table is assembled the same way
  into one Parquet file (row group by row group) and handed to `finish` as a LazyFrame scan.

A step whose reduce only selects rows (`KeyedStep.key_columns`, one input) spills less: pass 1
spills only the key columns and `ROW`, pass 2 routes only the kept rows' `ROW` (and the columns
the step adds), and pass 3 reads each range of the input again, keeps those rows in source order
and picks the few whole rows the report shows (`KeyedStep.report_rows`).

Buckets hold about a quarter of the engine's working budget and ranges a quarter too, so every
reduce and every range fits; the output never depends on either (keep rules choose by `ROW`).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow.parquet as pq

from tamis.pipelines.engines.memory import WORKING_FACTOR
from tamis.pipelines.engines.spill_files import SpillFiles, read_spill_dir
from tamis.pipelines.steps.base import (
    REPORT_ROWS,
    ROW,
    BatchResult,
    KeyedStep,
    StepContext,
    StepOutput,
)

if TYPE_CHECKING:
    from tamis.pipelines.engines.local import BoundedEngine

_BUCKET = "__tamis_bucket"
_RANGE = "__tamis_range"
#: seed of the bucket hash (any fixed value: buckets never change the result, only the memory)
BUCKET_SEED = 0x5EED


class KeyedRun:
    """One keyed step through the engine (see the module docstring)."""

    def __init__(
        self,
        engine: BoundedEngine,
        step: KeyedStep[Any],
        sources: dict[str, pl.LazyFrame],
        params: Any,
        ctx: StepContext,
        out: Path,
    ) -> None:
        self.engine, self.step, self.sources = engine, step, sources
        self.params, self.ctx, self.out = params, ctx, out
        self.spill = engine.spill_root / "keyed"
        #: tables written in ROW order: name -> the column of row positions they are ordered by
        self.row_tables: dict[str, str] = dict(getattr(step, "row_tables", {}) or {})
        self.table_schemas: dict[str, pl.Schema] = {}
        #: a selecting step's key columns (`KeyedStep.key_columns`), None for whole rows
        self.columns: list[str] | None = None
        self.picked: list[pl.DataFrame] = []

    def run(self) -> tuple[list[Any], StepOutput]:
        engine, step = self.engine, self.step
        plan = step.prepare(self.sources, self.params, self.ctx)
        if list(self.sources) == ["input"]:
            schema = self.sources["input"].collect_schema()
            self.columns = step.key_columns(schema, self.params, plan)
        self.spill.mkdir(parents=True, exist_ok=True)
        try:
            n_buckets, main_rows, schemas = self._partition(plan)
            engine.stats.buckets = n_buckets
            range_rows = self._range_rows(main_rows)
            merged, tables, out_schema = self._reduce(plan, n_buckets, schemas, range_rows)
            n_ranges = math.ceil(max(main_rows, 1) / range_rows)
            if self.columns is not None:
                shown = BatchResult(frame=merged.frame, stats=merged.stats, tables={
                    k: pl.concat(v, how="vertical_relaxed") for k, v in tables.items()
                })  # fmt: skip
                wanted = step.report_rows(shown, self.params, plan)
                parts, final_schema = self._pick(out_schema, range_rows, main_rows, wanted)
                tables[REPORT_ROWS] = self.picked
            else:
                parts, final_schema = self._write(out_schema, n_ranges)
            for name, column in self.row_tables.items():
                if name in self.table_schemas:
                    # a scan of the assembled file: finish and the store stream it
                    lazy = self._assemble(name, column, n_ranges)
                    merged.tables[name] = lazy  # type: ignore[assignment]
        finally:
            shutil.rmtree(self.spill, ignore_errors=True)
        merged.frame = pl.DataFrame(schema=final_schema)
        merged.tables.update({k: pl.concat(v, how="vertical_relaxed") for k, v in tables.items()})
        report = step.finish(merged, self.params, plan, self.ctx)
        return parts, StepOutput(frames={}, report=report, tables=merged.tables)

    # ---- pass 1 ---------------------------------------------------------------------------
    def _n_buckets(self) -> tuple[int, dict[str, int]]:
        from tamis.pipelines.engines.local import mean_row_bytes

        total = 0
        rows: dict[str, int] = {}
        for name, lf in self.sources.items():
            rows[name] = lf.select(pl.len()).collect().item()
            total += int(rows[name] * mean_row_bytes(lf))
        # a bucket (all inputs' rows of its keys) plus its output must fit a quarter of the budget
        return max(1, math.ceil(total * WORKING_FACTOR / (self.engine.budget / 4))), rows

    def _partition(self, plan: Any) -> tuple[int, int, dict[str, pl.Schema]]:
        from tamis.pipelines.engines.local import check_read

        engine = self.engine
        n_buckets, expected = self._n_buckets()
        schemas: dict[str, pl.Schema] = {}
        main_rows = 0
        with SpillFiles(on_bytes=engine.add_spill, on_file=engine.count_spill_file) as files:
            for name, lf in self.sources.items():
                rows = engine.batch_rows or engine.pick_batch_rows(lf)
                engine.stats.batch_rows = rows
                offset = 0
                read = lf.select(self.columns) if self.columns is not None else lf
                for batch in engine.batches(read, rows):
                    batch = batch.with_row_index(ROW, offset=offset).with_columns(
                        pl.col(ROW).cast(pl.UInt64)
                    )
                    offset += batch.height
                    schemas[name] = batch.schema
                    keys = self.step.key(batch, name, self.params, plan)
                    bucket = (keys.hash(seed=BUCKET_SEED) % n_buckets).alias(_BUCKET)
                    for (b,), part in (
                        batch.with_columns(bucket)
                        .partition_by(_BUCKET, as_dict=True, include_key=False)
                        .items()
                    ):
                        files.append(self.spill / name / f"b{b}", part)
                check_read(name, expected[name], offset)
                if name not in schemas:
                    schemas[name] = (
                        read.head(0)
                        .collect()
                        .with_row_index(ROW)
                        .with_columns(pl.col(ROW).cast(pl.UInt64))
                        .schema
                    )
                if name == "input":
                    main_rows = offset
        return n_buckets, main_rows, schemas

    # ---- pass 2 ---------------------------------------------------------------------------
    def _reduce(
        self, plan: Any, n_buckets: int, schemas: dict[str, pl.Schema], range_rows: int
    ) -> tuple[BatchResult, dict[str, list[pl.DataFrame]], pl.Schema]:
        from tamis.pipelines.engines.local import add_result

        engine, spill = self.engine, self.spill
        merged = BatchResult(frame=pl.DataFrame())
        tables: dict[str, list[pl.DataFrame]] = {}
        out_schema: pl.Schema | None = None
        with SpillFiles(on_bytes=engine.add_spill, on_file=engine.count_spill_file) as files:
            for bucket in range(n_buckets):
                dirs = {name: spill / name / f"b{bucket}" for name in self.sources}
                if not any(d.exists() for d in dirs.values()):
                    continue  # no rows hashed here (more buckets than keys)
                frames = {name: read_spill_dir(d, schemas[name]) for name, d in dirs.items()}
                engine.progress(f"reducing bucket {bucket + 1}/{n_buckets}")
                result = self.step.reduce(frames, self.params, plan, self.ctx)
                del frames
                out = result.frame
                if self.columns is not None:  # the kept rows' ROW and the step's new columns
                    out = out.select(
                        ROW, *[c for c in out.columns if c not in (ROW, *self.columns)]
                    )
                out_schema = out.schema
                route(files, out, ROW, spill / "out", range_rows)
                for name, column in self.row_tables.items():
                    table = result.tables.pop(name, None)
                    if table is not None:
                        self.table_schemas[name] = table.schema
                        route(files, table, column, spill / "tables" / name, range_rows)
                add_result(merged, result, tables)
                for d in dirs.values():
                    engine.drop_spill(d)
        return merged, tables, out_schema if out_schema is not None else pl.Schema()

    def _range_rows(self, rows: int) -> int:
        from tamis.pipelines.engines.local import mean_row_bytes

        source = self.sources.get("input")
        if source is None or rows == 0:
            return max(rows, 1)
        per_row = mean_row_bytes(source)
        fit = int(self.engine.budget / 8 / (per_row * WORKING_FACTOR))
        return max(1000, min(rows, fit))

    # ---- pass 3 ---------------------------------------------------------------------------
    def _write(self, schema: pl.Schema, n_ranges: int) -> tuple[list[Any], pl.Schema]:
        writer = self.engine.part_writer(self.out)
        for r in range(n_ranges):
            directory = self.spill / "out" / f"r{r}"
            self.engine.progress(f"writing range {r + 1}/{n_ranges}")
            frame = read_spill_dir(directory, schema)
            if frame.height:
                writer.write(frame.sort(ROW).drop(ROW))
            del frame
            self.engine.drop_spill(directory)
        final_schema = pl.Schema({k: v for k, v in schema.items() if k != ROW})
        return writer.close(final_schema), final_schema

    def _pick(
        self, kept_schema: pl.Schema, range_rows: int, rows: int, report: list[int]
    ) -> tuple[list[Any], pl.Schema]:
        """A selecting step's pass 3: each range of the input read again, its kept rows (joined
        with the step's new columns) written in source order; the `report` rows picked whole."""
        from tamis.pipelines.engines.local import check_read

        source = self.sources["input"]
        writer = self.engine.part_writer(self.out)
        wanted = pl.Series(ROW, report, dtype=pl.UInt64).implode()
        if not kept_schema:  # no bucket reduced (no rows): the empty input's schema
            kept_schema = pl.Schema({ROW: pl.UInt64})
        added = [c for c in kept_schema if c != ROW]
        final_schema = pl.Schema({**source.collect_schema(), **{c: kept_schema[c] for c in added}})
        n_ranges = math.ceil(rows / range_rows)
        start = 0
        for r in range(n_ranges):  # one range at a time (a slice of a scan reads its row groups)
            self.engine.progress(f"writing range {r + 1}/{n_ranges}")
            batch = source.slice(r * range_rows, range_rows).collect()
            directory = self.spill / "out" / f"r{r}"
            kept = read_spill_dir(directory, kept_schema)
            numbered = batch.with_row_index(ROW, offset=start).with_columns(
                pl.col(ROW).cast(pl.UInt64)
            )
            start += batch.height
            if added:
                frame = numbered.join(kept, on=ROW, how="inner", maintain_order="left")
            else:
                frame = numbered.join(kept, on=ROW, how="semi", maintain_order="left")
            if frame.height:
                writer.write(frame.drop(ROW))
            picked = numbered.filter(pl.col(ROW).is_in(wanted))
            self.picked.append(picked.with_columns(pl.col(ROW).cast(pl.Int64)))
            del batch, frame, kept, numbered
            self.engine.drop_spill(directory)
        check_read("input", rows, start)
        if not self.picked:
            empty = source.head(0).collect().with_row_index(ROW)
            self.picked.append(empty.with_columns(pl.col(ROW).cast(pl.Int64)))
        return writer.close(final_schema), final_schema

    def _assemble(self, name: str, column: str, n_ranges: int) -> pl.LazyFrame:
        """A row table's ranges, each sorted by `column`, as one Parquet file (one row group per
        range) beside the output's parts dir (inside the store's tmp dir); a scan of it."""
        schema = self.table_schemas[name]
        target = self.out.parent / f"{self.out.name}.tables" / f"{name}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        oldest = pl.CompatLevel.oldest()
        empty = pl.DataFrame(schema=schema).to_arrow(compat_level=oldest)
        with pq.ParquetWriter(str(target), empty.schema, compression="zstd") as pw:
            for r in range(n_ranges):
                directory = self.spill / "tables" / name / f"r{r}"
                frame = read_spill_dir(directory, schema)
                if frame.height:
                    pw.write_table(
                        frame.sort(column).to_arrow(compat_level=oldest).cast(empty.schema)
                    )
                del frame
                self.engine.drop_spill(directory)
        return pl.scan_parquet(target)


def route(files: SpillFiles, frame: pl.DataFrame, column: str, out: Path, range_rows: int) -> None:
    """Append `frame`'s rows to the spill file of their range of `column` (row positions)."""
    if not frame.height:
        return
    ranged = frame.with_columns((pl.col(column) // range_rows).alias(_RANGE))
    for (r,), part in ranged.partition_by(_RANGE, as_dict=True, include_key=False).items():
        files.append(out / f"r{r}", part)
