"""What the Ray engine ships to its workers: the task functions and the one-row result format.

Each function takes one Arrow table (a batch, or all rows of a bucket) and the step with its
params and plan (pickled by Ray), and returns an Arrow table. A task's result is one row: the
pickled `BatchResult` (rows, additive counts, report-table rows), the bucket it came from and the
id of the node it ran on (`unpack` reads it back on the driver).
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Iterator
from typing import Any

import polars as pl
import pyarrow as pa

from tamis.pipelines.engines.local import BUCKET_SEED
from tamis.pipelines.steps.base import ROW, BatchResult, KeyedStep, MapStep, StepContext

BUCKET = "__tamis_bucket"
RESULT = "result"
NODE = "node"


def noop(*args: Any, **kwargs: Any) -> None:
    return None


def task_ctx(ctx: StepContext) -> StepContext:
    """The context a task gets: the driver's progress display stays on the driver."""
    return dataclasses.replace(ctx, progress=noop)


def packed(result: BatchResult, key: int = 0) -> pa.Table:
    """One task's result as a one-row Arrow table (pickled result, bucket, node id)."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    return pa.table(
        {
            RESULT: pa.array([pickle.dumps(result, protocol=5)], pa.large_binary()),
            BUCKET: pa.array([key], pa.int64()),
            NODE: pa.array([node], pa.string()),
        }
    )


def map_task(table: pa.Table, step: MapStep[Any], params: Any, plan: Any, ctx: Any) -> pa.Table:
    batch = pl.from_arrow(table)
    assert isinstance(batch, pl.DataFrame)
    return packed(step.map_batch(batch, params, plan, ctx))


def bucket_task(
    table: pa.Table, step: KeyedStep[Any], name: str, params: Any, plan: Any, buckets: int
) -> pa.Table:
    batch = pl.from_arrow(table)
    assert isinstance(batch, pl.DataFrame)
    keys = step.key(batch, name, params, plan)
    bucket = (keys.hash(seed=BUCKET_SEED) % buckets).cast(pl.Int64).alias(BUCKET)
    return batch.with_columns(bucket).to_arrow()


def reduce_task(
    table: pa.Table, step: KeyedStep[Any], name: str, params: Any, plan: Any, ctx: Any
) -> pa.Table:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    key = int(frame[BUCKET][0]) if frame.height else -1
    frame = frame.drop(BUCKET).sort(ROW)
    return packed(step.reduce({name: frame}, params, plan, ctx), key)


def unpack(table: pa.Table) -> Iterator[tuple[int, str, BatchResult]]:
    """The (bucket, node id, result) of every task result row of a table."""
    for blob, key, node in zip(
        table[RESULT].to_pylist(),
        table[BUCKET].to_pylist(),
        table[NODE].to_pylist(),
        strict=True,
    ):
        yield int(key), str(node), pickle.loads(blob)
