"""A version's rows as Parquet parts: bounded size, boundaries that depend only on the rows.

A part closes when it holds `max_rows` rows or its rows' deterministic byte size (`row_bytes`)
reaches `max_bytes`, whichever comes first. The cut points are a function of the row sequence
alone, so the same rows give the same parts (and the same bytes) whether they arrive as one frame
or as a stream of batches of any size. Each part is written with fixed row-group size and
compression; its sha256 is taken as it is written. The version's content hash is a tree over the
parts (`parts_hash`), so a version can be written part by part without ever holding it.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import numpy as np
import polars as pl

from tamis.pipelines.engines.memory import row_bytes

#: bounds of a part. A part is held whole while it is written (about 2.5x its row bytes with the
#: copies of concat and encoding), so its byte bound is kept small enough for a build under a
#: limit of a few hundred MB; it never depends on the limit (the same rows give the same parts).
PART_MAX_ROWS = 1_000_000
PART_MAX_BYTES = 32 * 10**6
#: rows per Parquet row group inside a part (sized for scanning)
ROW_GROUP_ROWS = 128 * 1024
PARTS_HASH_PREFIX = b"tamis-parts-v1\n"


class PartInfo(TypedDict):
    """One part as the manifest lists it."""

    path: str
    rows: int
    bytes: int
    sha256: str


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def parts_hash(parts: list[PartInfo]) -> str:
    """The content hash of a version written as parts: sha256 over each part's rows and sha256."""
    h = hashlib.sha256(PARTS_HASH_PREFIX)
    for p in parts:
        h.update(f"{p['rows']} {p['sha256']}\n".encode())
    return h.hexdigest()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_part(frame: pl.DataFrame, path: Path) -> PartInfo:
    """Write one part deterministically (one chunk, fixed row groups and codec) and hash it."""
    frame.rechunk().write_parquet(
        path,
        compression="zstd",
        compression_level=3,
        row_group_size=ROW_GROUP_ROWS,
        statistics=True,
    )
    return PartInfo(
        path=path.name, rows=frame.height, bytes=path.stat().st_size, sha256=_sha256_file(path)
    )


@dataclass
class PartWriter:
    """Feed batches in order with `write`; `close` flushes the last part and lists them all.

    Holds at most one part's rows (plus the batch being cut) in memory. With `background` = N > 0,
    full parts are encoded on N threads while the next one fills (Parquet encoding of a part is
    one thread's work, overlapped with the caller's reading and with each other): N + 1 parts'
    rows in memory at once; the same parts.
    """

    directory: Path
    max_rows: int = PART_MAX_ROWS
    max_bytes: int = PART_MAX_BYTES
    #: called with each part once it is written (progress)
    on_part: Callable[[PartInfo], None] | None = None
    background: int = 0
    parts: list[PartInfo] = field(default_factory=list)
    _buffer: list[pl.DataFrame] = field(default_factory=list)
    _rows: int = 0
    _bytes: int = 0
    _schema: pl.Schema | None = None
    _pool: ThreadPoolExecutor | None = None
    _pending: deque[Future[PartInfo]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    @property
    def rows_written(self) -> int:
        return sum(p["rows"] for p in self.parts) + self._rows

    def write(self, batch: pl.DataFrame) -> None:
        if self._schema is None:
            self._schema = batch.schema
        elif batch.schema != self._schema:
            batch = batch.select(self._schema.names()).cast(dict(self._schema.items()))
        if not batch.height:
            return
        cum = np.cumsum(row_bytes(batch).to_numpy().astype(np.int64))
        start = 0
        while start < batch.height:
            base = int(cum[start - 1]) if start else 0
            # first row (index >= start) at which the open part reaches a bound
            by_rows = start + max(self.max_rows - self._rows, 1) - 1
            by_bytes = int(np.searchsorted(cum, base + self.max_bytes - self._bytes, side="left"))
            cut = min(by_rows, max(by_bytes, start))
            if cut >= batch.height:
                self._buffer.append(batch.slice(start))
                self._rows += batch.height - start
                self._bytes += int(cum[-1]) - base
                return
            self._buffer.append(batch.slice(start, cut + 1 - start))
            start = cut + 1
            self._flush()

    def _flush(self) -> None:
        # one contiguous copy, then the buffered chunks go: the part is held once while encoded
        buffer, self._buffer = self._buffer, []
        frame = pl.concat(buffer, how="vertical", rechunk=True) if buffer else None
        del buffer
        self._rows = 0
        self._bytes = 0
        if frame is None:
            return
        if not self.background:
            self._done(write_part(frame, self.directory / part_name(len(self.parts))))
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.background, thread_name_prefix="part-writer")
        path = self.directory / part_name(len(self.parts) + len(self._pending))
        self._pending.append(self._pool.submit(write_part, frame, path))
        del frame
        while len(self._pending) >= self.background + 1 or (
            self._pending and self._pending[0].done()
        ):
            self._done(self._pending.popleft().result())  # in order, at most N encoding

    def _wait(self) -> None:
        """Every part being encoded in the background, finished and listed in order."""
        while self._pending:
            self._done(self._pending.popleft().result())

    def _done(self, part: PartInfo) -> None:
        self.parts.append(part)
        if self.on_part is not None:
            self.on_part(part)

    def _shutdown(self) -> None:
        try:
            self._wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None

    def reset(self) -> None:
        """Start again from nothing: the parts written so far are deleted."""
        self._shutdown()
        for part in self.parts:
            (self.directory / part["path"]).unlink(missing_ok=True)
        self.parts, self._buffer, self._rows, self._bytes = [], [], 0, 0
        self._schema = None

    def close(self, schema: pl.Schema | None = None) -> list[PartInfo]:
        """Flush the last part; an empty output still gets one (empty) part with its schema."""
        try:
            if self._buffer:
                self._flush()
        finally:
            self._shutdown()
        if not self.parts:
            empty = pl.DataFrame(schema=self._schema or schema or pl.Schema())
            self.parts.append(write_part(empty, self.directory / part_name(0)))
        return self.parts

    def close_with(self, frame: pl.DataFrame) -> list[PartInfo]:
        """Write a whole frame and close (what a global step's output becomes)."""
        self.write(frame)
        return self.close(frame.schema)


def write_frame_parts(
    frame: pl.DataFrame,
    directory: Path,
    *,
    max_rows: int = PART_MAX_ROWS,
    max_bytes: int = PART_MAX_BYTES,
) -> list[PartInfo]:
    """All of a frame as parts (what the in-memory engine writes)."""
    writer = PartWriter(directory, max_rows=max_rows, max_bytes=max_bytes)
    writer.write(frame)
    return writer.close(frame.schema)
