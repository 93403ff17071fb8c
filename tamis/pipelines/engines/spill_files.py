"""Spill files that grow batch by batch: one Arrow IPC file per bucket (or range), not one per batch.

A keyed step's pass 1 cuts every batch into buckets; writing a file per (batch, bucket) made
`batches x buckets` small files (thousands for a million rows), each with its own header, and a
bucket read that opened them all. Here each spill directory keeps one open writer, and every batch
routed to it is appended as record batches, so a directory holds one file. At most `max_open`
writers stay open (the file-descriptor limit): the least recently used one is closed and the
directory's next batch starts a new numbered file. Files are read back in name order, so the rows
of a directory come back in the order they were appended.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc

#: writers kept open at once (each holds a file descriptor and a few KB)
MAX_OPEN = 256
_OPTIONS = ipc.IpcWriteOptions(compression="lz4")


@dataclass
class _Open:
    sink: Any
    writer: Any


@dataclass
class SpillFiles:
    """`append(directory, frame)` adds a frame's rows to `directory`'s current file; `close()`
    closes every writer (call it before reading the directories back)."""

    #: called with the bytes each append added on disk (the engine's spill total)
    on_bytes: Callable[[int], None] = lambda n: None
    #: called once per file started (the engine counts them)
    on_file: Callable[[], None] = lambda: None
    max_open: int = field(default_factory=lambda: MAX_OPEN)
    _open: OrderedDict[Path, _Open] = field(default_factory=OrderedDict)
    _files: dict[Path, int] = field(default_factory=dict)

    def append(self, directory: Path, frame: pl.DataFrame) -> None:
        # large_string: a compact copy (string views of a partition share the whole batch's
        # buffers, and IPC would write them all for every bucket)
        table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
        current = self._open.get(directory)
        if current is None:
            current = self._start(directory, table.schema)
        else:
            self._open.move_to_end(directory)
        before = current.sink.tell()
        current.writer.write_table(table)
        self.on_bytes(current.sink.tell() - before)

    def _start(self, directory: Path, schema: pa.Schema) -> _Open:
        while len(self._open) >= self.max_open:
            _, oldest = self._open.popitem(last=False)
            self._finish(oldest)
        directory.mkdir(parents=True, exist_ok=True)
        n = self._files.get(directory, 0)
        self._files[directory] = n + 1
        self.on_file()
        sink = pa.OSFile(str(directory / f"{n:06d}.arrow"), "wb")
        before = sink.tell()
        current = _Open(sink, ipc.new_file(sink, schema, options=_OPTIONS))
        self.on_bytes(sink.tell() - before)
        self._open[directory] = current
        return current

    def _finish(self, current: _Open) -> None:
        before = current.sink.tell()
        current.writer.close()
        self.on_bytes(current.sink.tell() - before)
        current.sink.close()

    def close(self) -> None:
        """Close every open writer (the files are complete and readable afterwards)."""
        while self._open:
            _, current = self._open.popitem(last=False)
            self._finish(current)

    def __enter__(self) -> SpillFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_spill_dir(directory: Path, schema: pl.Schema) -> pl.DataFrame:
    """All rows of a spill directory in the order they were appended (empty with `schema`)."""
    files = sorted(directory.glob("*.arrow")) if directory.exists() else []
    if not files:
        return pl.DataFrame(schema=schema)
    frames = [pl.read_ipc(f) for f in files]
    return pl.concat(frames, how="vertical", rechunk=True)
