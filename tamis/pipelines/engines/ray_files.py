"""What the Ray engine's tasks exchange: files in a shared dir, and results as Arrow IPC + JSON.

Tasks read their input rows themselves (a slice of the step's LazyFrame: a scan of the store's
parts by path, or an in-memory frame put once in the object store) and write what they produce
into a directory under the step's spill or output dir in the store's tmp dir, which every node
must be able to read and write (a shared filesystem; one machine's disk for a loopback cluster).

- A keyed stage's shuffle: each map task writes ONE file with one record batch per bucket
  (`write_buckets`, empty ones too, so batch b is bucket b); the reducer of bucket b reads batch
  b of every map task's file (`read_bucket`).
- Every file is written to a temporary name and renamed into place, so a task Ray re-runs after
  a lost node overwrites its own output whole.
- A task returns bytes: an Arrow IPC stream of (name, data) rows, one row `meta` holding a JSON
  object (counts, the node id, the task's peak memory) and one per result table, each itself an
  Arrow IPC stream (`pack`/`unpack`). Nothing is unpickled on the driver but Ray's own transport
  of a bytes object.
"""

from __future__ import annotations

import json
import os
import resource
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

META = "__meta__"
#: attempts of a task whose node died (Ray re-runs it elsewhere; its files are rewritten whole)
TASK_RETRIES = 3
_REMOTE: dict[Callable[..., Any], Any] = {}


def remote(fn: Callable[..., Any]) -> Any:
    """`fn` as a Ray remote function (one CPU, retried on a lost node), made once per process."""
    if fn not in _REMOTE:
        import ray

        _REMOTE[fn] = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(fn)
    return _REMOTE[fn]


def get_all(ray: Any, jobs: list[Any], stage: str) -> list[Any]:
    """The tasks' results; a lost node, worker or object is an `EngineError` naming the stage.

    An error a task's own code raised is raised as itself (a `DataError` stays one)."""
    from ray.exceptions import RayError, RayTaskError

    from tamis.errors import EngineError, TamisError

    try:
        return list(ray.get(jobs))
    except RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, TamisError):
            raise cause from None
        if not isinstance(cause, RayError) and cause is not None:
            raise
        failure: BaseException = exc
    except RayError as exc:
        failure = exc
    first = (str(failure).strip().splitlines() or [""])[-1][:300]
    raise EngineError(
        f"the Ray cluster failed during {stage}: {type(failure).__name__}: {first}",
        field="--address",
        fix="check that every node is up (`ray status`), then build again: the step wrote "
        "nothing to the store (its files were in the store's tmp dir)",
    ) from None


def node_id() -> str:
    import ray

    return str(ray.get_runtime_context().get_node_id())


def peak_rss() -> int:
    """This process's peak resident memory in bytes (Linux reports KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def ipc_bytes(frame: pl.DataFrame) -> bytes:
    sink = pa.BufferOutputStream()
    table = frame.to_arrow()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def from_ipc(data: bytes) -> pl.DataFrame:
    table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def pack(meta: dict[str, Any], frames: dict[str, pl.DataFrame] | None = None) -> bytes:
    """A task's result: JSON `meta` (with the node id and peak memory added) and IPC frames."""
    meta = {**meta, "node": node_id(), "peak_rss": peak_rss()}
    frames = frames or {}
    names = [META, *frames]
    data = [json.dumps(meta).encode(), *(ipc_bytes(f) for f in frames.values())]
    table = pa.table({"name": names, "data": pa.array(data, pa.large_binary())})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def unpack(blob: bytes) -> tuple[dict[str, Any], dict[str, pl.DataFrame]]:
    table = pa.ipc.open_stream(pa.py_buffer(blob)).read_all()
    rows = dict(zip(table["name"].to_pylist(), table["data"].to_pylist(), strict=True))
    meta = json.loads(rows.pop(META))
    return meta, {k: from_ipc(v) for k, v in rows.items()}


def replace_into(path: Path, write: Callable[[Path], object]) -> int:
    """Write to a temporary name beside `path`, rename into place; the file's size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.stat().st_size


def write_ipc(path: Path, frame: pl.DataFrame) -> int:
    """One frame as an uncompressed Arrow IPC file (atomically); its size."""
    return replace_into(path, lambda p: frame.write_ipc(p, compression="uncompressed"))


def write_buckets(path: Path, frame: pl.DataFrame, bucket: np.ndarray, n: int) -> int:
    """Rows routed to buckets 0..n-1: one record batch per bucket (in bucket order, empty ones
    too, each in row order) in one Arrow IPC file; its size."""
    order = np.argsort(bucket, kind="stable")
    bounds = np.searchsorted(bucket[order], np.arange(n + 1))
    table = frame[order].to_arrow().combine_chunks() if frame.height else frame.to_arrow()

    def write(p: Path) -> None:
        with pa.OSFile(str(p), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            for b in range(n):
                lo, hi = int(bounds[b]), int(bounds[b + 1])
                part = table.slice(lo, hi - lo)
                batches = part.to_batches()
                if batches:
                    writer.write_batch(
                        pa.concat_batches(batches) if len(batches) > 1 else batches[0]
                    )
                else:
                    writer.write_batch(pa.RecordBatch.from_pylist([], schema=table.schema))

    return replace_into(path, write)


def read_bucket(paths: list[Path], bucket: int) -> pl.DataFrame:
    """Bucket `bucket` of every file `write_buckets` wrote, in the files' order."""
    batches, schema = [], None
    for path in paths:
        with pa.OSFile(str(path), "rb") as source:  # read (copied), not mapped
            reader = pa.ipc.open_file(source)
            schema = reader.schema
            batch = reader.get_batch(bucket)
            if batch.num_rows:
                batches.append(pa.Table.from_batches([batch]))
    if schema is None:
        return pl.DataFrame()
    table = pa.concat_tables(batches) if batches else schema.empty_table()
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def read_ipc_slice(path: Path, start: int, rows: int) -> pl.DataFrame:
    return pl.read_ipc(path).slice(start, rows)


__all__ = [
    "from_ipc",
    "get_all",
    "ipc_bytes",
    "pack",
    "peak_rss",
    "read_bucket",
    "read_ipc_slice",
    "remote",
    "replace_into",
    "unpack",
    "write_buckets",
    "write_ipc",
]
