"""The Ray engine: the steps of the contract on a Ray cluster, with the local engine's parts.

Same contract as `BoundedEngine.run_step(step, inputs, params, ctx, out) -> (parts, StepOutput)`.
The driver plans and the workers do the work: tasks get row ranges of the input (they read the
rows themselves: a slice of the step's LazyFrame, a scan of the store's parts), write what they
produce into a spill dir in the store's tmp dir (a path every node shares), and return counts as
JSON and tables as Arrow IPC (`ray_files`, `ray_tasks`).

- `map`: one task per range (the local engine's batch rows) runs `step.map_batch` and writes a
  chunk file;
- `keyed` with one input: tasks number their rows (`ROW`) and route them to the step's key
  buckets (one file per task, one record batch per bucket); one task per bucket reduces it (rows
  sorted by `ROW`) and routes its output to ranges of `ROW`; one task per range sorts it back into
  source order; the keep rules choose by `ROW`, so the bucket count never changes the result.
  A step whose reduce only selects rows (`KeyedStep.key_columns`: dedup) shuffles only its key
  columns and `ROW`; the kept rows' `ROW` and every row's size come back, the driver plans the
  parts and each part task reads its span of the input again (`run_selecting`);
- near dedup (`run_bounded` steps call back `near_dedup_text`): its stages as tasks (`ray_near`);
- `global` and a keyed step over several inputs (leakage): the local engine on the driver, with
  the same memory check.

Chunks become parts through `ray_parts`: the driver replays the part writer's cut rule on the
rows' sizes and one task per part writes it into `out`, so the parts and `parts_hash` are the
local engine's. Start Ray with `ray_env.ray_session` (loopback only).
"""

from __future__ import annotations

import math
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tamis.errors import StepError
from tamis.pipelines.engines.local import BoundedEngine, EngineStats, mean_row_bytes
from tamis.pipelines.engines.memory import WORKING_FACTOR, row_bytes
from tamis.pipelines.engines.parts import PartInfo
from tamis.pipelines.engines.ray_env import import_ray, ray_session
from tamis.pipelines.engines.ray_files import get_all, remote, unpack
from tamis.pipelines.engines.ray_parts import write_parts, write_selected_parts
from tamis.pipelines.engines.ray_tasks import (
    KEPT,
    SIZES,
    bucket_task,
    map_task,
    noop,
    range_task,
    ready,
    reduce_task,
    result_of,
    rows_task,
    select_task,
    task_ctx,
)
from tamis.pipelines.steps.base import (
    REPORT_ROWS,
    ROW,
    BatchResult,
    KeyedStep,
    MapStep,
    Step,
    StepContext,
    StepOutput,
)

Result = tuple[dict[str, Any], dict[str, pl.DataFrame]]

#: at least this many buckets per CPU of the cluster (parallelism; buckets never change results)
BUCKETS_PER_CPU = 4


@dataclass
class RayEngine:
    """Runs steps on the Ray instance this process is connected to (see `ray_session`)."""

    memory_limit: int
    spill_root: Path
    progress: Callable[..., None] = noop
    batch_rows: int | None = None
    part_max_rows: int | None = None
    part_max_bytes: int | None = None
    #: bucket count of keyed steps (None: from the memory limit and the cluster's CPUs)
    buckets: int | None = None
    #: near dedup's components run on the driver (union-find) while the edges fit a quarter of
    #: the limit; this bounds the driver path by edge count instead (-1: always as tasks)
    components_in_driver_max_edges: int | None = None
    #: the node ids the engine's tasks ran on (a cluster test checks both workers were used)
    nodes: set[str] = field(default_factory=set)
    #: seconds per stage of the last step (ingest, distributed, write) and the bytes shuffled
    timings: dict[str, float] = field(default_factory=dict)
    shuffle_bytes: int = 0
    #: the last near dedup's stage timings, bytes per stage, nodes and task peak memory
    near_run: Any = None
    local: BoundedEngine = field(init=False)

    def __post_init__(self) -> None:
        self.local = BoundedEngine(
            memory_limit=self.memory_limit,
            spill_root=self.spill_root,
            progress=self.progress,
            batch_rows=self.batch_rows,
            part_max_rows=self.part_max_rows,
            part_max_bytes=self.part_max_bytes,
        )

    @property
    def stats(self) -> EngineStats:
        return self.local.stats

    def use(self, spill_root: Path, progress: Callable[..., None]) -> None:
        """Point the engine (and its local fallback) at one step's spill dir and progress line."""
        self.spill_root = spill_root
        self.progress = progress
        self.local.use(spill_root, progress)

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
        """Run a step by its kind (see the module doc); the main output goes to parts in `out`."""
        custom = getattr(step, "run_bounded", None)
        if custom is not None:  # multi-stage (near dedup): the step calls back `near_dedup_text`
            parts, output = custom(self, inputs, params, ctx, out)
            return parts, output
        kind = step.kind_for(params)
        lazy = [v for v in inputs.values() if isinstance(v, pl.LazyFrame)]
        if kind == "map" and isinstance(step, MapStep):
            return self.run_map(step, inputs, params, ctx, out)
        if kind == "keyed" and isinstance(step, KeyedStep) and len(lazy) == 1:
            return self.run_keyed(step, inputs, params, ctx, out)
        return self.local.run_step(
            step, inputs, params, ctx, out, estimated_bytes=estimated_bytes, rows=rows
        )

    # ---- multi-stage steps --------------------------------------------------------------
    def near_dedup_text(
        self, engine: Any, source: pl.LazyFrame, config: Any, **kwargs: Any
    ) -> tuple[
        list[PartInfo], dict[str, Any], pl.DataFrame | pl.LazyFrame, pl.DataFrame | pl.LazyFrame
    ]:
        """Near dedup of text as tasks (`ray_near`); `engine` is this engine. The clusters and
        pairs tables are scans of the tasks' files when the components ran as tasks."""
        from tamis.pipelines.engines.ray_near import ray_near_dedup_text

        result = ray_near_dedup_text(self, source, config, **kwargs)
        self.timings = dict(self.near_run.timings)
        self.shuffle_bytes = sum(self.near_run.shuffle.values())
        self.nodes |= self.near_run.nodes
        return result

    def find_leakage(
        self, source: pl.LazyFrame, against: dict[str, pl.LazyFrame], config: Any, **kwargs: Any
    ) -> tuple[list[PartInfo], dict[str, Any], dict[str, pl.DataFrame]]:
        """Leakage of `source` against the eval sets (`ray_leakage`)."""
        from tamis.pipelines.engines.ray_leakage import ray_find_leakage

        return ray_find_leakage(self, source, against, config, **kwargs)

    def warm_up(self, ray: Any) -> None:
        """One `ready` task per CPU of the cluster: the workers import the engine's modules once,
        when the session starts (a worker's first task otherwise pays ~1 s of imports)."""
        get_all(ray, [remote(ready).remote() for _ in range(self._cpus(ray))], "starting workers")

    def min_buckets(self, ray: Any) -> int:
        """Buckets of a keyed stage: at least `BUCKETS_PER_CPU` per CPU of the cluster."""
        return BUCKETS_PER_CPU * self._cpus(ray)

    def part_writer(self, directory: Path) -> Any:
        return self.local.part_writer(directory)

    def check_global(self, step: Step[Any], estimated_bytes: int, rows: int, ctx: Any) -> None:
        self.local.check_global(step, estimated_bytes, rows, ctx)

    # ---- map -----------------------------------------------------------------------------
    def run_map(
        self, step: MapStep[Any], inputs: dict[str, Any], params: Any, ctx: StepContext, out: Path
    ) -> tuple[list[PartInfo], StepOutput]:
        ray = import_ray()
        source: pl.LazyFrame = inputs["input"]
        total = int(source.select(pl.len()).collect().item())
        if not total:  # no rows: the local engine gives the mapped empty input's schema
            return self.local.run_map(step, inputs, params, ctx, out)
        plan = step.prepare(source, params, ctx)
        ranges = self._ranges(source, total)
        spill = self._spill_dir("ray-map")
        try:
            t0 = time.perf_counter()
            src = ray.put(source)
            shipped = (step, params, plan, task_ctx(ctx))
            files = [spill / f"{i:06d}.arrow" for i in range(len(ranges))]
            jobs = [
                remote(map_task).remote(src, r, *shipped, str(files[i]))
                for i, r in enumerate(ranges)
            ]
            results = self._gather(ray, jobs, f"{step.name}'s map tasks", total)
            self.timings = {"map": time.perf_counter() - t0}
            parts = self._parts(ray, files, results, out, 0)
        finally:
            shutil.rmtree(spill, ignore_errors=True)
        merged = _merged(results)
        merged.frame = pl.read_parquet(out / parts[0]["path"]).head(0)
        report = step.finish(merged, params, plan, ctx)
        return parts, StepOutput(frames={}, report=report, tables=merged.tables)

    # ---- keyed ---------------------------------------------------------------------------
    def run_keyed(
        self, step: KeyedStep[Any], inputs: dict[str, Any], params: Any, ctx: StepContext, out: Path
    ) -> tuple[list[PartInfo], StepOutput]:
        ray = import_ray()
        [(name, source)] = [(k, v) for k, v in inputs.items() if isinstance(v, pl.LazyFrame)]
        total = int(source.select(pl.len()).collect().item())
        if not total:
            return self.local.run_step(step, inputs, params, ctx, out)
        plan = step.prepare({name: source}, params, ctx)
        columns = step.key_columns(source.collect_schema(), params, plan)
        if columns is not None:
            return self.run_selecting(step, name, source, total, params, plan, columns, ctx, out)
        ranges = self._ranges(source, total)
        n = self._bucket_count(ray, source, total)
        self.local.stats.buckets = n
        n_ranges = n
        range_rows = max(1, math.ceil(total / n_ranges))
        spill = self._spill_dir("ray-keyed")
        shipped = (step, name, params, plan)
        try:
            t0 = time.perf_counter()
            src = ray.put(source)
            mapped, metas = self._key_buckets(ray, src, ranges, shipped, n, spill, total)
            t1 = time.perf_counter()
            reduced = [str(spill / "reduce" / f"{b:06d}.arrow") for b in range(n)]
            jobs = [
                remote(reduce_task).remote(
                    mapped, b, *shipped, task_ctx(ctx), (range_rows, n_ranges), reduced[b]
                )
                for b in range(n)
            ]
            buckets = self._gather(
                ray, jobs, f"{step.name}'s reduce tasks"
            )  # in bucket order: the local engine's merge order
            t2 = time.perf_counter()
            full = [f for f, (m, _) in zip(reduced, buckets, strict=True) if not m["empty"]]
            files = [spill / "out" / f"{r:06d}.arrow" for r in range(n_ranges)]
            jobs = [remote(range_task).remote(full, r, str(files[r])) for r in range(n_ranges)]
            chunks = self._gather(ray, jobs, f"{step.name}'s ordering by source position")
            t3 = time.perf_counter()
            rows = [m["rows"] for m, _ in chunks]
            parts = self._parts(
                ray, files, chunks, out, next((i for i, r in enumerate(rows) if r), 0)
            )
        finally:
            shutil.rmtree(spill, ignore_errors=True)
        self.shuffle_bytes = sum(
            m["shuffle_bytes"] for m, _ in metas + buckets if "shuffle_bytes" in m
        )
        self.timings = {
            "key buckets": t1 - t0, "reduce": t2 - t1, "ranges": t3 - t2,
            "parts": time.perf_counter() - t3,
        }  # fmt: skip
        merged = _merged([b for b in buckets if not b[0]["empty"]])
        merged.frame = pl.read_parquet(out / parts[0]["path"]).head(0)
        report = step.finish(merged, params, plan, ctx)
        return parts, StepOutput(frames={}, report=report, tables=merged.tables)

    def run_selecting(
        self,
        step: KeyedStep[Any],
        name: str,
        source: pl.LazyFrame,
        total: int,
        params: Any,
        plan: Any,
        columns: list[str],
        ctx: StepContext,
        out: Path,
    ) -> tuple[list[PartInfo], StepOutput]:
        """A keyed step whose reduce only selects rows (`KeyedStep.key_columns`): only the key
        columns and `ROW` are shuffled and reduced; the kept rows' `ROW` (with the columns the
        step adds) and every row's size come back to the driver, which plans the parts; each
        part task reads its span of the input again and keeps its rows, in source order."""
        ray = import_ray()
        ranges = self._ranges(source, total)
        n = self._bucket_count(ray, source.select(columns), total)
        self.local.stats.buckets = n
        spill = self._spill_dir("ray-keyed")
        shipped = (step, name, params, plan)
        try:
            t0 = time.perf_counter()
            src = ray.put(source)
            mapped, metas = self._key_buckets(ray, src, ranges, shipped, n, spill, total, columns)
            t1 = time.perf_counter()
            jobs = [
                remote(select_task).remote(mapped, b, *shipped, task_ctx(ctx), columns)
                for b in range(n)
            ]
            buckets = self._gather(ray, jobs, f"{step.name}'s reduce tasks")  # in bucket order
            t2 = time.perf_counter()
            full = [b for b in buckets if not b[0]["empty"]]
            merged = _merged(full)
            shown = remote(rows_task).remote(src, step.report_rows(merged, params, plan))
            kept = pl.concat([f[KEPT] for _, f in full], how="vertical").sort(ROW)
            sizes = np.concatenate([f[SIZES]["b"].to_numpy() for _, f in metas])
            sizes = sizes[kept[ROW].cast(pl.Int64).to_numpy()]
            if kept.width > 1:  # the columns the step adds count in the rows' sizes
                sizes = sizes + row_bytes(kept.drop(ROW)).cast(pl.Int64).to_numpy()
            t3 = time.perf_counter()
            writer = self.local.part_writer(out)
            bounds = (writer.max_rows, writer.max_bytes)
            parts, part_metas = write_selected_parts(ray, src, kept, sizes, out, bounds)
            [(_, picked)] = [unpack(b) for b in get_all(ray, [shown], "reading example rows")]
        finally:
            shutil.rmtree(spill, ignore_errors=True)
        for meta in part_metas:
            self.nodes.add(meta["node"])
        self.local.stats.parts_written += len(parts)
        self.shuffle_bytes = sum(m["shuffle_bytes"] for m, _ in metas)
        self.timings = {
            "key buckets": t1 - t0, "reduce": t2 - t1, "ranges": t3 - t2,
            "parts": time.perf_counter() - t3,
        }  # fmt: skip
        merged.tables[REPORT_ROWS] = picked[KEPT]
        merged.frame = pl.read_parquet(out / parts[0]["path"]).head(0)
        result = step.finish(merged, params, plan, ctx)
        return parts, StepOutput(frames={}, report=result, tables=merged.tables)

    # ---- shared --------------------------------------------------------------------------
    def _key_buckets(
        self,
        ray: Any,
        src: Any,
        ranges: list[tuple[int, int]],
        shipped: tuple[Any, ...],
        n: int,
        spill: Path,
        total: int,
        columns: list[str] | None = None,
    ) -> tuple[list[str], list[Result]]:
        """The shuffle's map side: one `bucket_task` per range (all columns, or `columns` and
        `ROW`), one file each with one record batch per bucket; (the files, their results)."""
        mapped = [str(spill / "map" / f"{i:06d}.arrow") for i in range(len(ranges))]
        jobs = [
            remote(bucket_task).remote(src, r, *shipped, n, mapped[i], columns)
            for i, r in enumerate(ranges)
        ]
        return mapped, self._gather(ray, jobs, f"{shipped[0].name}'s key buckets", total)

    def _ranges(self, source: pl.LazyFrame, total: int) -> list[tuple[int, int]]:
        """The tasks' row ranges: the local engine's batches."""
        rows = self.local.pick_batch_rows(source)
        self.local.stats.batch_rows = rows
        return [(s, min(rows, total - s)) for s in range(0, total, rows)]

    def _spill_dir(self, name: str) -> Path:
        path = self.spill_root / f"{name}-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _gather(
        self, ray: Any, jobs: list[Any], stage: str, total: int | None = None
    ) -> list[Result]:
        """The tasks' results in order, noting their nodes; the rows read must be the input's."""
        results = [unpack(blob) for blob in get_all(ray, jobs, stage)]
        for meta, _ in results:
            self.nodes.add(meta["node"])
        if total is not None:
            read = sum(m["rows_in"] for m, _ in results)
            self.local.stats.rows_in += read
            if read != total:
                raise StepError(
                    f"the input gave {read:,} of its {total:,} rows to the Ray tasks",
                    fix="run `tamis verify` to find a damaged version, then build again",
                )
        return results

    def _parts(
        self, ray: Any, files: list[Path], chunks: list[Result], out: Path, schema_from: int
    ) -> list[PartInfo]:
        """Tasks write the chunks' rows as parts cut where the local engine cuts them."""
        writer = self.local.part_writer(out)
        sizes = [f[SIZES]["b"].to_numpy() for _, f in chunks]
        parts, metas = write_parts(
            ray, files, sizes, out, (writer.max_rows, writer.max_bytes), schema_from
        )
        for meta in metas:
            self.nodes.add(meta["node"])
        self.local.stats.parts_written += len(parts)
        return parts

    def _cpus(self, ray: Any) -> int:
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def _bucket_count(self, ray: Any, source: pl.LazyFrame, rows: int) -> int:
        """Enough buckets that one (plus its output) fits a quarter of the limit, and at least
        `BUCKETS_PER_CPU` per CPU of the cluster."""
        if self.buckets:
            return self.buckets
        total = rows * mean_row_bytes(source)
        fit = math.ceil(total * WORKING_FACTOR / (self.memory_limit / 4))
        return max(1, fit, self.min_buckets(ray))


def _merged(results: list[Result]) -> BatchResult:
    """The counts summed and the tables concatenated, in the tasks' order."""
    merged = BatchResult(frame=pl.DataFrame())
    tables: dict[str, list[pl.DataFrame]] = {}
    for meta, frames in results:
        result = result_of(meta, frames)
        for k, v in result.stats.items():
            merged.stats[k] = merged.stats.get(k, 0) + v
        for k, t in result.tables.items():
            tables.setdefault(k, []).append(t)
    merged.tables = {k: pl.concat(v, how="vertical_relaxed") for k, v in tables.items()}
    return merged


def make_ray_engine(
    address: str | None,
    memory_limit: int,
    spill_root: Path,
    progress: Callable[..., None] = noop,
) -> RayEngine:
    """The engine the runner uses under `--engine ray` (inside `ray_engine_session`)."""
    return RayEngine(memory_limit=memory_limit, spill_root=spill_root, progress=progress)


@contextmanager
def ray_engine_session(
    address: str | None,
    memory_limit: int,
    spill_root: Path,
    progress: Callable[..., None] = noop,
    *,
    num_cpus: int = 2,
) -> Iterator[RayEngine]:
    """Start a local loopback Ray instance (no address) or join `address`, yield an engine, and
    stop/disconnect at the end: `with ray_engine_session(addr, limit, tmp) as engine: ...`."""
    with ray_session(address, num_cpus=num_cpus) as ray:
        engine = make_ray_engine(address, memory_limit, spill_root, progress)
        engine.warm_up(ray)
        yield engine
