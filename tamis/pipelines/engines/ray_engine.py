"""The Ray engine: the steps of the contract on a Ray cluster, with the local engine's parts.

Same contract as `BoundedEngine.run_step(step, inputs, params, ctx, out) -> (parts, StepOutput)`:

- `map`: the driver streams the input in batches (the local engine's batch size) into Ray's
  object store; `map_batches` runs `step.map_batch` on each Arrow batch (`pl.from_arrow`) with
  the plan `prepare` made once on the driver; the results come back in batch order and the driver
  writes them through `PartWriter`, so the parts and `parts_hash` are the local engine's.
- `keyed`: the driver numbers the rows (`ROW`); `map_batches` adds the step's key bucket
  (`key(...).hash(BUCKET_SEED) % buckets`); `groupby(bucket).map_groups` is the hash repartition
  and runs `reduce` on each bucket (its rows sorted by `ROW`); the driver routes the outputs to
  `ROW` ranges spilled in its spill dir and writes them in source order (the local engine's code).
- `global`, a keyed step over several inputs (leakage) and a multi-stage step (`run_bounded`,
  near dedup): the local engine on the driver, with the same memory check.

Each task's output is one row holding the pickled `BatchResult` (rows, counts, tables) and the id
of the node it ran on (`nodes`); the task functions are in `ray_tasks`. Start Ray with
`ray_env.ray_session` (loopback only).
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tamis.pipelines.engines.local import (
    BoundedEngine,
    EngineStats,
    _add,
    _read_dir,
    mean_row_bytes,
)
from tamis.pipelines.engines.memory import WORKING_FACTOR
from tamis.pipelines.engines.parts import PartInfo
from tamis.pipelines.engines.ray_env import import_ray, ray_session
from tamis.pipelines.engines.ray_tasks import (
    BUCKET,
    bucket_task,
    map_task,
    noop,
    reduce_task,
    task_ctx,
    unpack,
)
from tamis.pipelines.steps.base import (
    ROW,
    BatchResult,
    KeyedStep,
    MapStep,
    Step,
    StepContext,
    StepOutput,
)

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
    ) -> tuple[list[PartInfo], dict[str, Any], pl.DataFrame, pl.DataFrame]:
        """Near dedup of text as tasks (`ray_near`); `engine` is this engine."""
        from tamis.pipelines.engines.ray_near import ray_near_dedup_text

        result = ray_near_dedup_text(self, source, config, **kwargs)
        self.timings = dict(self.near_run.timings)
        self.shuffle_bytes = sum(self.near_run.shuffle.values())
        self.nodes |= self.near_run.nodes
        return result

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
        plan = step.prepare(source, params, ctx)
        rows = self.local.pick_batch_rows(source)
        self.local.stats.batch_rows = rows
        refs = [ray.put(b.to_arrow()) for b in self.local.batches(source, rows)]
        if not refs:  # no rows: the local engine gives the mapped empty input's schema
            return self.local.run_map(step, inputs, params, ctx, out)
        ds = ray.data.from_arrow_refs(refs).map_batches(
            map_task,
            batch_size=None,
            batch_format="pyarrow",
            fn_kwargs={"step": step, "params": params, "plan": plan, "ctx": task_ctx(ctx)},
        )
        writer = self.local.part_writer(out)
        merged = BatchResult(frame=pl.DataFrame())
        tables: dict[str, list[pl.DataFrame]] = {}
        schema: pl.Schema | None = None
        for _key, result in self._results(ds):
            schema = result.frame.schema
            writer.write(result.frame)
            _add(merged, result, tables)
        del refs
        parts = writer.close(schema)
        merged.frame = pl.DataFrame(schema=schema)
        merged.tables = {k: pl.concat(v, how="vertical_relaxed") for k, v in tables.items()}
        report = step.finish(merged, params, plan, ctx)
        return parts, StepOutput(frames={}, report=report, tables=merged.tables)

    def _results(self, ds: Any) -> Iterator[tuple[int, BatchResult]]:
        """The tasks' results in the dataset's order, noting the nodes they ran on."""
        for table in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            for key, node, result in unpack(table):
                self.nodes.add(node)
                yield key, result

    # ---- keyed ---------------------------------------------------------------------------
    def run_keyed(
        self, step: KeyedStep[Any], inputs: dict[str, Any], params: Any, ctx: StepContext, out: Path
    ) -> tuple[list[PartInfo], StepOutput]:
        ray = import_ray()
        [(name, source)] = [(k, v) for k, v in inputs.items() if isinstance(v, pl.LazyFrame)]
        plan = step.prepare({name: source}, params, ctx)
        t0 = time.perf_counter()
        refs, total = self._numbered(ray, source)
        self.timings = {"ingest": time.perf_counter() - t0}
        if not refs:
            return self.local.run_keyed(step, inputs, params, ctx, out)
        n_buckets = self._bucket_count(ray, source, total)
        self.local.stats.buckets = n_buckets
        shipped = {"step": step, "name": name, "params": params, "plan": plan}
        ds = (
            ray.data.from_arrow_refs(refs)
            .map_batches(
                bucket_task,
                batch_size=None,
                batch_format="pyarrow",
                fn_kwargs={**shipped, "buckets": n_buckets},
            )
            .groupby(BUCKET, num_partitions=max(1, min(n_buckets, self._cpus(ray))))
            .map_groups(
                reduce_task,
                batch_format="pyarrow",
                fn_kwargs={**shipped, "ctx": task_ctx(ctx)},
            )
        )
        spill = self.spill_root / "ray-keyed"
        spill.mkdir(parents=True, exist_ok=True)
        try:
            parts, merged = self._gather_in_order(ds, source, total, spill, out)
        finally:
            shutil.rmtree(spill, ignore_errors=True)
        del refs
        report = step.finish(merged, params, plan, ctx)
        return parts, StepOutput(frames={}, report=report, tables=merged.tables)

    def _numbered(self, ray: Any, source: pl.LazyFrame) -> tuple[list[Any], int]:
        """The input's batches with their source positions (`ROW`) in the object store."""
        rows = self.local.pick_batch_rows(source)
        self.local.stats.batch_rows = rows
        refs, offset = [], 0
        self.shuffle_bytes = 0
        for batch in self.local.batches(source, rows):
            numbered = batch.with_row_index(ROW, offset=offset).with_columns(
                pl.col(ROW).cast(pl.UInt64)
            )
            offset += batch.height
            table = numbered.to_arrow()
            self.shuffle_bytes += table.nbytes
            refs.append(ray.put(table))
        return refs, offset

    def _cpus(self, ray: Any) -> int:
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def _bucket_count(self, ray: Any, source: pl.LazyFrame, rows: int) -> int:
        """Enough buckets that one (plus its output) fits a quarter of the limit, and at least
        `BUCKETS_PER_CPU` per CPU of the cluster."""
        if self.buckets:
            return self.buckets
        total = rows * mean_row_bytes(source)
        fit = math.ceil(total * WORKING_FACTOR / (self.memory_limit / 4))
        return max(1, fit, BUCKETS_PER_CPU * self._cpus(ray))

    def _gather_in_order(
        self, ds: Any, source: pl.LazyFrame, rows: int, spill: Path, out: Path
    ) -> tuple[list[PartInfo], BatchResult]:
        """Route the buckets' outputs to `ROW` ranges on the driver's disk, then write the
        ranges sorted by `ROW` (source order) through the part writer."""
        range_rows = self.local._range_rows(source, rows)
        merged = BatchResult(frame=pl.DataFrame())
        by_bucket: list[tuple[int, BatchResult]] = []
        schema: pl.Schema | None = None
        t0 = time.perf_counter()
        for key, result in self._results(ds):
            schema = result.frame.schema
            self.local._route_ranges(result.frame, spill / "out", key, range_rows)
            by_bucket.append((key, BatchResult(pl.DataFrame(), result.stats, result.tables)))
            self.progress(f"reduced bucket {len(by_bucket)}")
        t1 = time.perf_counter()
        self.timings["distributed"] = t1 - t0  # key buckets, shuffle, reduce, routing
        tables: dict[str, list[pl.DataFrame]] = {}
        for _key, result in sorted(by_bucket, key=lambda kv: kv[0]):  # the local engine's order
            _add(merged, result, tables)
        schema = schema if schema is not None else pl.Schema()
        writer = self.local.part_writer(out)
        for r in range(math.ceil(max(rows, 1) / range_rows)):
            frame = _read_dir(spill / "out" / f"r{r}", schema)
            if frame.height:
                writer.write(frame.sort(ROW).drop(ROW))
            self.local._drop(spill / "out" / f"r{r}")
        final = pl.Schema({k: v for k, v in schema.items() if k != ROW})
        parts = writer.close(final)
        self.timings["write"] = time.perf_counter() - t1
        merged.frame = pl.DataFrame(schema=final)
        merged.tables = {k: pl.concat(v, how="vertical_relaxed") for k, v in tables.items()}
        return parts, merged


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
    with ray_session(address, num_cpus=num_cpus):
        yield make_ray_engine(address, memory_limit, spill_root, progress)
