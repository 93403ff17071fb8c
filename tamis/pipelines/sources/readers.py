"""Reading a source of any format (with the report of what was inferred): CSV/TSV by DuckDB
(`csv`), Parquet/JSON Lines/JSON by Polars, Hugging Face `save_to_disk` folders by `datasets`.

A build streams a source into Parquet parts (`import_source_parts`): CSV/TSV in DuckDB record
batches, JSON Lines and Parquet (a file or a directory of parts) through Polars scans, batch by
batch, so a source larger than memory imports within the build's memory limit. JSON and HF
folders are read whole, after a check that they fit the memory budget. `read_source_report`
reads any source into one frame (for `tamis` commands that show or compare a file), after the
same check."""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path
from typing import Any

import polars as pl

from tamis.errors import SpecError
from tamis.pipelines.engines.local import BoundedEngine
from tamis.pipelines.sources.csv import read_csv
from tamis.pipelines.sources.settings import (
    SourceRead,
    glob_files,
    is_glob,
    source_exists,
    source_settings,
)
from tamis.pipelines.sources.stream import (
    FRAME_BATCH_ROWS,
    EngineSink,
    FrameSink,
    Sink,
    check_parquet_rows,
    maybe_gunzip,
    mean_line_bytes,
    stream_ndjson,
    stream_scan,
    write_whole,
)

#: formats read whole (not streamed): checked against the memory budget first
WHOLE_FORMATS = ("json", "hf")


def load_source(spec: Any, name: str) -> SourceRead:
    """Read source `name` of a pipeline spec with its settings and options into one frame."""
    sink = FrameSink()
    read = _read_spec(spec, name, sink, None)
    read.frame = sink.frame()
    return read


def import_source_parts(spec: Any, name: str, out: Path, engine: BoundedEngine) -> SourceRead:
    """Stream source `name` of a pipeline spec into Parquet parts in `out` (`SourceRead.parts`),
    batch by batch within the engine's memory limit; the report as `load_source` gives it."""
    writer = engine.part_writer(out)
    read = _read_spec(spec, name, EngineSink(writer, engine), engine)
    read.parts = writer.close()
    return read


def _read_spec(spec: Any, name: str, sink: Sink, engine: BoundedEngine | None) -> SourceRead:
    src = spec.sources[name]
    return _read(
        spec.source_path(name),
        spec.source_format(name),
        src.options,
        name=name,
        file=spec.file,
        settings=source_settings(src),
        sink=sink,
        engine=engine,
    )


def read_source(path: Path, fmt: str, options: dict[str, Any], **kw: Any) -> pl.DataFrame:
    """Read a source file into a frame: `read_source_report(...)` (the same keywords: name,
    file, settings) without the report of what was inferred."""
    return read_source_report(path, fmt, options, **kw).frame


def read_source_report(
    path: Path,
    fmt: str,
    options: dict[str, Any],
    *,
    name: str,
    file: str,
    settings: dict[str, Any] | None = None,
) -> SourceRead:
    """Read a source into one frame (checked against the memory budget first)."""
    sink = FrameSink()
    read = _read(path, fmt, options, name=name, file=file, settings=settings, sink=sink)
    read.frame = sink.frame()
    return read


def _read(
    path: Path,
    fmt: str,
    options: dict[str, Any],
    *,
    name: str,
    file: str,
    settings: dict[str, Any] | None,
    sink: Sink,
    engine: BoundedEngine | None = None,
) -> SourceRead:
    """Read a source into `sink` (streamed unless its format is read whole); None `engine`
    reads into memory, so every format is first checked against the memory budget."""
    if not source_exists(path):
        raise SpecError(
            f"source file not found: {path}" if not is_glob(path) else f"no file matches {path}",
            file=file,
            field=f"sources.{name}.path",
            fix="paths are relative to the pipeline YAML; check the path",
        )
    settings = dict(settings or {})
    opts = dict(options)
    if is_glob(path) and fmt != "parquet":
        raise SpecError(
            f"a glob ({path.name}) reads Parquet files, not {fmt}",
            file=file,
            field=f"sources.{name}.path",
            fix="point `path:` at one file, or give the Parquet parts (e.g. data/*.parquet)",
        )
    if fmt not in ("csv", "tsv") and settings:
        raise SpecError(
            f"{', '.join(sorted(settings))} apply to CSV/TSV sources, not {fmt}",
            file=file,
            field=f"sources.{name}",
            fix="remove them, or set `format: csv`",
        )
    if engine is None or fmt in WHOLE_FORMATS:
        check_size(path, fmt, name=name, file=file)
    try:
        if fmt in ("csv", "tsv"):
            rows = engine.rows_for(mean_line_bytes(path)) if engine else FRAME_BATCH_ROWS
            return read_csv(
                path, fmt, settings, opts, name=name, file=file, sink=sink, batch_rows=rows
            )
        if fmt == "parquet":
            target: Any = path
            if is_glob(path):
                target = glob_files(path)
            elif path.is_dir():
                target = _parquet_files(path, name=name, file=file)
            read = stream_scan(pl.scan_parquet(target, **opts), "polars.read_parquet", sink, engine)
            check_parquet_rows(target, read.info["rows"], path, name=name, file=file)
            return read
        if fmt == "jsonl":
            return stream_ndjson(path, opts, sink, engine)
        if fmt == "json":
            return write_whole(pl.read_json(maybe_gunzip(path), **opts), "polars.read_json", sink)
        if fmt == "hf":
            return write_whole(_read_hf(path, opts), "datasets.load_from_disk", sink)
    except SpecError:
        raise
    except pl.exceptions.PanicException as exc:  # a BaseException: malformed file metadata
        raise SpecError(
            f"could not read {path} as {fmt}: the file is malformed (the reader crashed: "
            f"{str(exc).splitlines()[0][:300] if str(exc) else 'panic'})",
            file=file,
            field=f"sources.{name}",
            fix="the file's metadata is inconsistent; re-export it from its source",
        ) from None
    except Exception as exc:  # a reader error: say which source and how to fix it
        raise SpecError(
            f"could not read {path} as {fmt}: {exc}",
            file=file,
            field=f"sources.{name}",
            fix="set `format:` and the reader settings (header, columns, delimiter, quote) or "
            "`options:` (see docs/pipelines.md)",
        ) from exc
    raise SpecError(f"unknown format '{fmt}'", file=file, field=f"sources.{name}.format")


def memory_budget() -> int:
    """Bytes a source may take once decompressed: TAMIS_MEMORY_BUDGET (e.g. 8G, 500M, or bytes),
    else half of the machine's physical memory."""
    raw = os.environ.get("TAMIS_MEMORY_BUDGET", "").strip()
    if raw:
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)B?", raw.upper())
        if not match:
            raise SpecError(
                f"TAMIS_MEMORY_BUDGET={raw!r} is not a size",
                field="TAMIS_MEMORY_BUDGET",
                fix="give bytes or a size such as 500M or 8G",
            )
        return int(float(match.group(1)) * units.get(match.group(2), 1))
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 << 30


def check_size(path: Path, fmt: str, *, name: str, file: str) -> None:
    """Refuse, before reading, a source larger than the memory budget once decompressed.

    A gzip file is decompressed as a stream and counted, stopping as soon as it passes the budget
    (a 1 MB gzip can hold 1 GB); Parquet's uncompressed size comes from its metadata; any other
    file counts its size on disk.
    """
    budget = memory_budget()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    if is_glob(path):
        files = glob_files(path)
    if fmt == "parquet":
        files = [p for p in files if p.suffix.lower() in (".parquet", ".pq")] or files
    total = 0
    for p in files:
        if p.suffix.lower() == ".gz":
            total += _gunzipped_size(p, budget - total + 1)
        elif fmt == "parquet":
            total += _parquet_size(p)
        elif fmt != "hf":
            total += p.stat().st_size
        if total > budget:
            raise SpecError(
                f"{path} is larger than the memory budget once "
                f"{'decompressed' if p.suffix.lower() == '.gz' else 'read'}: more than "
                f"{budget:,} bytes (refused before reading it into memory)",
                file=file,
                field=f"sources.{name}.path",
                fix="if the machine has the memory, raise TAMIS_MEMORY_BUDGET (e.g. 16G); "
                "otherwise split the file",
            )


def _gunzipped_size(path: Path, limit: int) -> int:
    """Decompressed size of a gzip file, counted up to `limit` bytes (then stops)."""
    total = 0
    try:
        with gzip.open(path, "rb") as fh:
            while total <= limit:
                chunk = fh.read(1 << 20)
                if not chunk:
                    break
                total += len(chunk)
    except (OSError, EOFError, gzip.BadGzipFile):  # the reader reports a broken file itself
        pass
    return total


def _parquet_size(path: Path) -> int:
    """Uncompressed size of a Parquet file's row groups from its metadata (0 if unreadable)."""
    try:
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path).metadata
        return sum(max(meta.row_group(i).total_byte_size, 0) for i in range(meta.num_row_groups))
    except Exception:  # the reader reports a malformed file itself, naming it
        return 0


def _parquet_files(path: Path, *, name: str, file: str) -> list[Path]:
    """The `*.parquet` files of a directory (Spark/Polars/DuckDB partitioned output), sorted."""
    files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
    if not files:
        raise SpecError(
            f"the directory {path} holds no *.parquet file",
            file=file,
            field=f"sources.{name}.path",
            fix="point `path:` at a file or a folder of .parquet files, or set `format:`",
        )
    return files


# --------------------------------------------------------------------------- Hugging Face


def _read_hf(path: Path, opts: dict[str, Any]) -> pl.DataFrame:
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SpecError(
            "reading a Hugging Face dataset needs the `datasets` package",
            fix="pip install 'tamis[train]'",
        ) from exc
    ds: Any = datasets.load_from_disk(os.fspath(path))
    if isinstance(ds, datasets.DatasetDict):
        split = opts.get("split")
        if split is None:
            raise SpecError(
                f"{path} holds several splits ({', '.join(ds)})",
                fix="add options: {split: NAME}",
            )
        ds = ds[split]
    frame = pl.from_arrow(ds.data.table)
    assert isinstance(frame, pl.DataFrame)
    return frame
