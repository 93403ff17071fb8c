"""Spill for out-of-core stages: rows routed to buckets on disk, per-row shingle sets on disk.

What the bounded near dedup (`near_bounded.py`) uses of the engine is the `Engine` protocol (the
local engine in `tamis.pipelines.engines.local` provides it); every file goes under a directory
the caller deletes, and the engine's spill size counts what is on disk.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np
import polars as pl

from tamis.curate.dedup.shingles import Shingles


class Engine(Protocol):
    """What the out-of-core stages use of `tamis.pipelines.engines.local.BoundedEngine`."""

    spill_root: Path
    memory_limit: int
    stats: Any

    @property
    def progress(self) -> Callable[..., None]: ...

    def batches(self, source: pl.LazyFrame, rows: int) -> Iterator[pl.DataFrame]: ...
    def pick_batch_rows(self, source: pl.LazyFrame) -> int: ...
    def part_writer(self, directory: Path) -> Any: ...
    def _spill(self, frame: pl.DataFrame, path: Path) -> None: ...


def account(engine: Engine, delta: int) -> None:
    engine.stats.spill_bytes += delta
    engine.stats.peak_spill_bytes = max(engine.stats.peak_spill_bytes, engine.stats.spill_bytes)


class BucketSpill:
    """Rows (numeric columns without nulls) routed to `n` buckets, buffered as NumPy arrays up to
    `flush_bytes`; a flush writes one raw file, column after column with each column's rows sorted
    by bucket (so the file count follows the flushes, not the buckets). Spill that never reached a
    flush is served from memory (it is within `flush_bytes`), without touching the disk."""

    def __init__(self, engine: Engine, directory: Path, n: int, flush_bytes: float) -> None:
        self.engine, self.directory, self.n = engine, directory, n
        self.flush_bytes = flush_bytes
        self.buffers: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
        self.buffered = 0
        self.schema: pl.Schema | None = None
        self.dtypes: dict[str, np.dtype[Any]] = {}
        #: per flushed file: its path, the byte offset of each column, and bucket -> (start, rows)
        self.files: list[tuple[Path, dict[str, int], dict[int, tuple[int, int]]]] = []

    def add(self, bucket: np.ndarray, frame: pl.DataFrame) -> None:
        if not frame.height:
            return
        if self.schema is None:
            self.schema = frame.schema
        columns = {c: frame[c].to_numpy() for c in self.schema.names()}
        self.dtypes = self.dtypes or {c: a.dtype for c, a in columns.items()}
        self.buffers.append((np.asarray(bucket, dtype=np.int64), columns))
        self.buffered += bucket.size * 8 + sum(a.nbytes for a in columns.values())
        if self.buffered > self.flush_bytes:
            self.flush()

    def _sorted(self) -> tuple[dict[int, tuple[int, int]], dict[str, np.ndarray]]:
        """The buffered rows sorted by bucket (stable): bucket -> (start, rows), the columns."""
        assert self.schema is not None
        buffers, self.buffers, self.buffered = self.buffers, [], 0
        bucket = np.concatenate([b for b, _ in buffers])
        columns = {c: np.concatenate([x[c] for _, x in buffers]) for c in self.schema.names()}
        del buffers
        if self.n > 1:
            order = np.argsort(bucket, kind="stable")
            bucket = bucket[order]
            columns = {c: a[order] for c, a in columns.items()}
        ids, starts, counts = np.unique(bucket, return_index=True, return_counts=True)
        rows = zip(ids.tolist(), starts.tolist(), counts.tolist(), strict=True)
        index = {b: (s, c) for b, s, c in rows}
        return index, columns

    def flush(self) -> None:
        """Write the buffered rows: each column whole (sorted by bucket), from its own buffer."""
        if not self.buffers:
            return
        index, columns = self._sorted()
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{len(self.files):06d}.bin"
        where, at = {}, 0
        with open(path, "wb") as fh:
            for name, values in columns.items():
                where[name] = at
                fh.write(_bytes_of(values))
                at += values.nbytes
        self.files.append((path, where, index))
        account(self.engine, path.stat().st_size)

    def buckets(self) -> Iterator[tuple[int, pl.DataFrame]]:
        """Each non-empty bucket in order (read whole); the files are deleted at the end."""
        if self.schema is None:
            return
        if not self.files:  # all of it buffered: no file written nor read
            index, columns = self._sorted()
            for b in sorted(index):
                s, c = index[b]
                yield b, pl.DataFrame({k: a[s : s + c] for k, a in columns.items()}, self.schema)
            return
        self.flush()
        handles = [open(path, "rb") for path, _, _ in self.files]  # noqa: SIM115 (closed below)
        try:
            for b in sorted({b for _, _, index in self.files for b in index}):
                parts: dict[str, list[np.ndarray]] = {c: [] for c in self.dtypes}
                for fh, (_, where, index) in zip(handles, self.files, strict=True):
                    if b not in index:
                        continue
                    s, c = index[b]
                    for name, dtype in self.dtypes.items():
                        fh.seek(where[name] + s * dtype.itemsize)
                        parts[name].append(np.frombuffer(fh.read(c * dtype.itemsize), dtype))
                yield b, pl.DataFrame({k: np.concatenate(v) for k, v in parts.items()}, self.schema)
        finally:
            for fh in handles:
                fh.close()
            for path, _, _ in self.files:
                account(self.engine, -path.stat().st_size)
                path.unlink()
            self.files = []


#: the most bytes one read of `ShingleStore.gather` takes (one or more whole rows)
READ_BYTES = 16 << 20
#: the most bytes of rows not asked for that one read of `read_runs` covers (a read costs about as
#: much as copying this many bytes)
GAP_BYTES = 64 << 10


@dataclass
class ShingleStore:
    """Every row's shingle set on disk: uint64 hashes, and the int64 end offset of each row."""

    directory: Path
    engine: Engine
    rows: int = 0
    total: int = 0

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._hashes = open(self.directory / "hashes.u64", "wb")  # noqa: SIM115 (closed in close)
        self._offsets = open(self.directory / "offsets.i64", "wb")  # noqa: SIM115
        self._offsets.write(np.zeros(1, "<i8").tobytes())

    def append(self, sh: Shingles) -> None:
        """Write one batch's sets from the arrays' own buffers (no bytes copy of the hashes)."""
        self._hashes.write(_bytes_of(sh.hashes.astype("<u8", copy=False)))
        self._offsets.write(_bytes_of((sh.offsets[1:] + self.total).astype("<i8")))
        self.rows += sh.n_docs
        self.total += int(sh.offsets[-1])
        account(self.engine, 8 * (sh.hashes.size + sh.n_docs))

    def close(self) -> None:
        self._hashes.close()
        self._offsets.close()

    def gather(self, rows: np.ndarray) -> Shingles:
        """The shingle sets of `rows` (sorted, unique) as one `Shingles` (document i = rows[i]).

        The hashes are read with plain reads of at most `READ_BYTES` covering consecutive rows, not
        through a memory map: a map's touched pages count in the process' resident memory (a
        scattered gather touched most of the file: 800 MB over a 768MB limit), a read's pages stay
        in the page cache.
        """
        offsets = np.memmap(self.directory / "offsets.i64", dtype="<i8", mode="r")
        start, stop = np.asarray(offsets[rows]), np.asarray(offsets[rows + 1])
        del offsets
        sizes = stop - start
        local = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(sizes, out=local[1:])
        hashes = np.zeros(int(local[-1]), dtype=np.uint64)
        if hashes.size:
            with open(self.directory / "hashes.u64", "rb") as fh:
                read_runs(fh, start, stop, local, hashes)
        return Shingles(offsets=local, hashes=hashes, n_tokens=np.zeros(rows.size, np.int64))


def read_runs(
    fh: BinaryIO, start: np.ndarray, stop: np.ndarray, local: np.ndarray, out: np.ndarray
) -> None:
    """Fill `out` with rows' uint64 hashes end to end (row i at local[i]) from a file holding them
    at word offsets [start[i], stop[i]) (rows sorted), by plain reads (no memory map, whose
    touched pages would count in resident memory).

    One read covers consecutive rows separated by at most `GAP_BYTES` of rows not asked for, and
    at most `READ_BYTES`; a read without such gaps lands in `out` directly. So a sparse gather
    reads about the bytes it needs (a candidate chunk's rows spread over the whole file: 25 MB,
    not the 113 MB between its first and last row), a dense one reads large runs.
    """
    words, gap = READ_BYTES // 8, GAP_BYTES // 8
    n = start.size
    if n == 0:
        return
    # reads never span a gap of more than `gap` words: the rows after each such gap
    breaks = np.flatnonzero(start[1:] - stop[:-1] > gap) + 1
    ends = np.append(breaks, n)
    assert out.flags.c_contiguous  # read into in place
    view = _bytes_of(out)
    i = 0
    while i < n:
        limit = int(ends[np.searchsorted(ends, i, side="right")])
        j = max(i + 1, int(np.searchsorted(stop, start[i] + words, side="right")))
        j = min(j, limit)
        lo, hi = int(start[i]), int(stop[j - 1])
        fh.seek(8 * lo)
        if hi - lo == int(local[j] - local[i]):  # no row between: straight into `out`
            _read_into(fh, view[8 * int(local[i]) : 8 * int(local[j])])
        else:
            chunk = np.frombuffer(fh.read(8 * (hi - lo)), dtype="<u8")
            sizes = stop[i:j] - start[i:j]
            within = np.arange(int(sizes.sum())) - np.repeat(local[i:j] - local[i], sizes)
            out[local[i] : local[j]] = chunk[np.repeat(start[i:j] - lo, sizes) + within]
        i = j


def _bytes_of(values: np.ndarray) -> memoryview:
    """The bytes of an array, without a copy when it is contiguous (a write or read of them)."""
    return np.ascontiguousarray(values).data.cast("B")


def _read_into(fh: BinaryIO, view: memoryview) -> None:
    done = 0
    while done < len(view):
        got = fh.readinto(view[done:])  # type: ignore[attr-defined]
        if not got:
            raise OSError(f"short read of a spill file: {done} of {len(view)} bytes")
        done += got


def return_freed_memory() -> None:
    """glibc: serve blocks of 4 MB or more by mmap, so they go back to the OS when freed.

    Without it the threshold grows with the largest block freed, and the big NumPy temporaries
    of each batch (MinHash threads) stay in per-thread heaps: the process keeps hundreds of MB
    it no longer uses. Process-wide and harmless elsewhere; a no-op off glibc.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(-3, 4 << 20)  # M_MMAP_THRESHOLD


__all__ = [
    "BucketSpill",
    "Engine",
    "ShingleStore",
    "account",
    "read_runs",
    "return_freed_memory",
]
