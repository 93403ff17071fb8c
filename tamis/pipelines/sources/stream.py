"""Streaming a source: where its batches go (`Sink`: parts in a build, one frame for a whole
read) and the streamed formats: JSON Lines in chunks of whole lines, Parquet by a Polars scan."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from tamis.errors import SpecError
from tamis.pipelines.engines.local import BoundedEngine, read_slices
from tamis.pipelines.engines.parts import PartWriter
from tamis.pipelines.sources.settings import SourceRead

#: rows per batch when reading a source into memory
FRAME_BATCH_ROWS = 65_536


class Sink(Protocol):
    """Where a source's rows go, batch by batch, in order (`reset` starts again from nothing)."""

    def write(self, batch: pl.DataFrame) -> None: ...

    def reset(self) -> None: ...


class FrameSink:
    """Batches gathered into one frame (`read_source_report`)."""

    def __init__(self) -> None:
        self.batches: list[pl.DataFrame] = []

    def write(self, batch: pl.DataFrame) -> None:
        self.batches.append(batch)

    def reset(self) -> None:
        self.batches = []

    def frame(self) -> pl.DataFrame:
        return pl.concat(self.batches, how="vertical") if self.batches else pl.DataFrame()


class EngineSink:
    """Batches into parts, counted by the engine (rows, bytes per second, parts)."""

    def __init__(self, writer: PartWriter, engine: BoundedEngine) -> None:
        self.writer, self.engine = writer, engine

    def write(self, batch: pl.DataFrame) -> None:
        self.writer.write(batch)
        if batch.height:
            self.engine.count(batch)

    def reset(self) -> None:
        self.writer.reset()


def write_whole(frame: pl.DataFrame, reader: str, sink: Sink) -> SourceRead:
    sink.write(frame)
    return SourceRead(info={"reader": reader, "rows": frame.height})


def stream_scan(
    lf: pl.LazyFrame, reader: str, sink: Sink, engine: BoundedEngine | None
) -> SourceRead:
    """A Polars scan into `sink` batch by batch, in order (an empty source gives its schema)."""
    rows = engine.pick_batch_rows(lf) if engine else FRAME_BATCH_ROWS
    total = 0
    for batch in read_slices(lf, rows):
        sink.write(batch)
        total += batch.height
    if not total:
        sink.write(lf.head(0).collect())
    return SourceRead(info={"reader": reader, "rows": total})


def stream_ndjson(
    path: Path, opts: dict[str, Any], sink: Sink, engine: BoundedEngine | None
) -> SourceRead:
    """JSON Lines in chunks of whole lines, each parsed by `pl.read_ndjson` with the schema
    inferred from the first chunk (as a whole-file read infers it from its first rows), so memory
    holds one chunk (a Polars scan buffers batches ahead of a slower consumer)."""
    mean = mean_line_bytes(path)
    rows = engine.rows_for(mean) if engine else FRAME_BATCH_ROWS
    chunk_bytes = max(int(rows * mean), 1 << 16)
    schema: Any = opts.get("schema")
    total = 0
    opener: Any = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as fh:
        while True:
            chunk = fh.read(chunk_bytes)
            if not chunk:
                break
            if not chunk.endswith(b"\n"):
                chunk += fh.readline()  # up to the end of the line
            kw = {**opts, "schema": schema} if schema is not None else opts
            batch = pl.read_ndjson(io.BytesIO(chunk), **kw)
            schema = batch.schema
            if batch.height:
                sink.write(batch)
                total += batch.height
    if not total:
        sink.write(pl.read_ndjson(maybe_gunzip(path), **opts))
    return SourceRead(info={"reader": "polars.read_ndjson", "rows": total})


def check_parquet_rows(target: Any, rows: int, path: Path, *, name: str, file: str) -> None:
    """Rows read must be the rows the footers declare: a reader that crashes inside a streaming
    scan ends the stream early instead of raising, which must never pass as a shorter source."""
    import pyarrow.parquet as pq

    files = target if isinstance(target, list) else [target]
    try:
        declared = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    except Exception:  # unreadable footers: the scan said what it could
        return
    if declared != rows:
        raise SpecError(
            f"could not read {path} as parquet: the file is malformed ({rows:,} rows read of the "
            f"{declared:,} its metadata declares)",
            file=file,
            field=f"sources.{name}",
            fix="the file's metadata is inconsistent; re-export it from its source",
        )


def mean_line_bytes(path: Path, sample: int = 1 << 20) -> float:
    """The mean line length of a text file's first MB (decompressed for .gz)."""
    opener: Any = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(sample)
    except OSError:
        return 64.0
    return max(len(head) / max(head.count(b"\n"), 1), 1.0)


def maybe_gunzip(path: Path) -> Any:
    """A `.gz` file's decompressed bytes (Polars' JSON readers do not decompress), else the path."""
    if path.suffix.lower() == ".gz":
        with gzip.open(path, "rb") as fh:
            return io.BytesIO(fh.read())
    return path
