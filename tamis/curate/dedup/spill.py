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


_BUCKET = "__bucket"


class BucketSpill:
    """Rows routed to `n` buckets, buffered up to `flush_bytes`; a flush writes one Arrow IPC file
    with one record batch per bucket (so the file count follows the flushes, not the buckets)."""

    def __init__(self, engine: Engine, directory: Path, n: int, flush_bytes: float) -> None:
        self.engine, self.directory, self.n = engine, directory, n
        self.flush_bytes = flush_bytes
        self.buffers: list[pl.DataFrame] = []
        self.buffered = 0
        #: per flushed file: its path and bucket -> record batch index
        self.files: list[tuple[Path, dict[int, int]]] = []

    def add(self, bucket: np.ndarray, frame: pl.DataFrame) -> None:
        if not frame.height:
            return
        self.buffers.append(frame.with_columns(pl.Series(_BUCKET, bucket, dtype=pl.Int64)))
        self.buffered += int(frame.estimated_size())
        if self.buffered > self.flush_bytes:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows sorted by bucket: one record batch per bucket (uncompressed,
        so reading one back is a plain read)."""
        if not self.buffers:
            return
        import pyarrow as pa

        frame = pl.concat(self.buffers).sort(_BUCKET, maintain_order=True)
        self.buffers, self.buffered = [], 0
        ids, starts, counts = np.unique(
            frame[_BUCKET].to_numpy(), return_index=True, return_counts=True
        )
        table = frame.drop(_BUCKET).to_arrow().combine_chunks()
        del frame
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{len(self.files):06d}.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            for s, c in zip(starts.tolist(), counts.tolist(), strict=True):
                writer.write_batch(table.slice(s, c).to_batches()[0])
        self.files.append((path, {b: k for k, b in enumerate(ids.tolist())}))
        account(self.engine, path.stat().st_size)

    def buckets(self) -> Iterator[tuple[int, pl.DataFrame]]:
        """Each non-empty bucket in order (read whole); the files are deleted at the end."""
        import pyarrow as pa

        self.flush()
        sources = [pa.OSFile(str(path), "rb") for path, _ in self.files]
        try:
            readers = [pa.ipc.open_file(src) for src in sources]
            where: dict[int, list[tuple[int, int]]] = {}
            for f, (_, index) in enumerate(self.files):
                for b, k in index.items():
                    where.setdefault(b, []).append((f, k))
            for b in sorted(where):
                batches = [readers[f].get_batch(k) for f, k in where[b]]
                frame = pl.from_arrow(pa.Table.from_batches(batches))
                assert isinstance(frame, pl.DataFrame)
                yield b, frame
        finally:
            for src in sources:
                src.close()
            for path, _ in self.files:
                account(self.engine, -path.stat().st_size)
                path.unlink()
            self.files = []


#: the most bytes one read of `ShingleStore.gather` takes (one or more whole rows)
READ_BYTES = 16 << 20


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
        self._hashes.write(sh.hashes.astype("<u8", copy=False).tobytes())
        self._offsets.write((sh.offsets[1:] + self.total).astype("<i8").tobytes())
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
    at word offsets [start[i], stop[i]) (rows sorted), by reads of at most `READ_BYTES` covering
    consecutive rows: no memory map, whose touched pages would count in resident memory."""
    words = READ_BYTES // 8
    i, n = 0, start.size
    while i < n:
        j = max(i + 1, int(np.searchsorted(stop, start[i] + words, side="right")))
        lo, hi = int(start[i]), int(stop[j - 1])
        fh.seek(8 * lo)
        chunk = np.frombuffer(fh.read(8 * (hi - lo)), dtype="<u8")
        sizes = stop[i:j] - start[i:j]
        within = np.arange(int(sizes.sum())) - np.repeat(local[i:j] - local[i], sizes)
        out[local[i] : local[j]] = chunk[np.repeat(start[i:j] - lo, sizes) + within]
        i = j


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
