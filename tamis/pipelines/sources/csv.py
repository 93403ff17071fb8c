"""CSV and TSV sources, read by DuckDB's `read_csv`: sniffed delimiter, quote, header and types,
padding after the delimiter stripped, and warnings about a header row that looks like data.

The rows are streamed: DuckDB's record batches go to a sink (a `PartWriter` in a build, a list
of frames for `read_source_report`), so a file larger than memory is never held whole. What the
report needs from the rows (the first rows for the header checks, the largest day of each date
column) is gathered batch by batch."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tamis.errors import SpecError
from tamis.pipelines.sources.csv_checks import (
    count_blank_lines,
    date_format_warnings,
    header_warnings,
)
from tamis.pipelines.sources.settings import SourceRead
from tamis.pipelines.sources.stream import Sink

#: Polars `read_csv` option names (the reader before READER_VERSION 2) -> DuckDB `read_csv` names
POLARS_CSV_OPTIONS = {
    "separator": "delim",
    "has_header": "header",
    "quote_char": "quote",
    "new_columns": "names",
    "infer_schema_length": "sample_size",
    "skip_rows": "skip",
    "null_values": "nullstr",
    "encoding": "encoding",
}

_OPTION_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: rows the header checks look at (the first rows of the file)
HEADER_SAMPLE = 200


@dataclass
class _Scan:
    """What the report needs from the rows, gathered batch by batch."""

    rows: int = 0
    #: the first HEADER_SAMPLE rows (an empty frame with the schema when there are none)
    head: pl.DataFrame | None = None
    #: date/datetime column -> largest day of the month seen
    max_day: dict[str, int] = field(default_factory=dict)

    def add(self, batch: pl.DataFrame) -> None:
        self.rows += batch.height
        if self.head is None:
            self.head = batch.head(HEADER_SAMPLE)
        elif self.head.height < HEADER_SAMPLE:
            self.head = pl.concat([self.head, batch.head(HEADER_SAMPLE - self.head.height)])
        for c, t in batch.schema.items():
            if t == pl.Date or isinstance(t, pl.Datetime):
                day = batch.get_column(c).drop_nulls().dt.day().max()
                if day is not None:
                    self.max_day[c] = max(self.max_day.get(c, 0), int(day))  # type: ignore[arg-type]


def _csv_arguments(
    fmt: str, settings: dict[str, Any], opts: dict[str, Any], *, name: str, file: str
) -> tuple[dict[str, Any], list[str]]:
    """DuckDB `read_csv` named arguments from the source's settings and options."""
    kw: dict[str, Any] = {}
    notes: list[str] = []
    for old, new in POLARS_CSV_OPTIONS.items():
        if old not in opts:
            continue
        value = opts.pop(old)
        if old == "quote_char" and value is None:
            value = ""
        if old == "infer_schema_length":
            if value == 0:
                kw["all_varchar"] = True
                continue
            value = -1 if value is None else value
        kw[new] = value
        notes.append(f"option '{old}' read as DuckDB's '{new}'")
    for key in opts:  # option names become SQL parameter names: identifiers only
        if not isinstance(key, str) or not _OPTION_RE.fullmatch(key):
            raise SpecError(
                f"option name {key!r} is not a DuckDB read_csv parameter name",
                file=file,
                field=f"sources.{name}.options",
                fix="use read_csv parameter names (letters, digits, '_'), e.g. sample_size",
            )
    kw.update(opts)
    if fmt == "tsv":
        kw.setdefault("delim", "\t")
        kw.setdefault("quote", "")
    if "delimiter" in settings:
        kw["delim"] = settings["delimiter"]
    if "quote" in settings:
        kw["quote"] = settings["quote"]
    if "columns" in settings:
        kw["names"] = list(settings["columns"])
        if "header" not in settings and "header" not in kw:
            kw["header"] = False
    if "header" in settings:
        kw["header"] = bool(settings["header"])
    return kw, notes


def read_csv(
    path: Path,
    fmt: str,
    settings: dict[str, Any],
    opts: dict[str, Any],
    *,
    name: str,
    file: str,
    sink: Sink,
    batch_rows: int = 65_536,
) -> SourceRead:
    """Stream a CSV/TSV file into `sink`; the report of what was inferred (the rows are in the
    sink, not in `SourceRead.frame`)."""
    import duckdb

    if path.is_file() and path.stat().st_size == 0:
        raise SpecError(
            f"{path} is empty",
            file=file,
            field=f"sources.{name}.path",
            fix="point the source at a file with a header and rows",
        )
    skip_space = settings.get("skip_initial_space", fmt == "csv")
    kw, notes = _csv_arguments(fmt, settings, opts, name=name, file=file)
    con = duckdb.connect(":memory:")
    try:
        try:
            sniffed = _sniff(con, path, kw)
        except duckdb.Error as exc:
            raise _csv_error(exc, path, name=name, file=file) from None
        n_cols = len(sniffed["Columns"])
        if "columns" in settings and len(settings["columns"]) != n_cols:
            raise SpecError(
                f"`columns:` names {len(settings['columns'])} columns, but {path.name} has "
                f"{n_cols} (delimiter {sniffed['Delimiter']!r})",
                file=file,
                field=f"sources.{name}.columns",
                fix=f"give {n_cols} names, or set `delimiter:`",
            )
        sample_note = None
        try:
            scan = _duck_stream(con, path, kw, sink, skip_space, batch_rows)
        except duckdb.ConversionException as exc:
            if "sample_size" in kw:
                raise _csv_error(exc, path, name=name, file=file) from None
            # a value past the sniffer's sample does not fit the sniffed type: sniff every row
            sink.reset()
            kw["sample_size"] = -1
            sniffed = _sniff(con, path, kw)
            scan = _duck_stream(con, path, kw, sink, skip_space, batch_rows)
            sample_note = "every row (a value beyond the default sample did not fit its type)"
        except duckdb.Error as exc:
            raise _csv_error(exc, path, name=name, file=file) from None
    finally:
        con.close()
    frame = scan.head if scan.head is not None else pl.DataFrame()
    header_source = "given" if "header" in kw else "sniffed"
    has_header = bool(kw["header"]) if "header" in kw else bool(sniffed["HasHeader"])
    quote = sniffed["Quote"]
    info: dict[str, Any] = {
        "reader": "duckdb.read_csv",
        "delimiter": sniffed["Delimiter"],
        "quote": "(none)" if quote in ("", "(empty)", None) else quote,
        "header": has_header,
        "header_from": header_source,
        "skip_initial_space": bool(skip_space),
        "rows": scan.rows,
        # DuckDB's types, under the frame's names (`columns:` renames what the sniffer saw)
        "types": dict(zip(frame.columns, [c["type"] for c in sniffed["Columns"]], strict=False)),
    }
    blank = count_blank_lines(path)
    if blank is not None and frame.width > 1:
        info["blank_lines_skipped"] = blank
    elif blank:
        info["blank_lines"] = blank
        notes.append("in a one-column file a blank line is an empty value: read as null")
    if sample_note:
        info["type_sample"] = sample_note
    warnings = header_warnings(frame, has_header, header_source, "columns" in settings)
    warnings += date_format_warnings(frame.columns, scan.max_day, info, sniffed, kw, path)
    skipped = int(sniffed.get("SkipRows") or 0)
    if skipped and "skip" not in kw:
        info["lines_skipped_at_top"] = skipped
        warnings.append(
            f"the first {skipped} line(s) of {path.name} do not fit the layout of the rest "
            "(e.g. a title, or rows with fewer fields) and were skipped; fix: if they are data, "
            "repair those lines; to accept this, set `options: {skip: "
            f"{skipped}}}`"
        )
    if notes:
        info["notes"] = notes
    return SourceRead(info=info, warnings=warnings)


def _sniff(con: Any, path: Path, kw: dict[str, Any]) -> dict[str, Any]:
    sniff_kw = {k: v for k, v in kw.items() if k not in ("names", "column_names")}
    args = "".join(f", {k} := ?" for k in sniff_kw)
    cur = con.execute(f"SELECT * FROM sniff_csv(?{args})", [os.fspath(path), *sniff_kw.values()])
    rows = cur.fetchall()
    cols = [d[0] for d in cur.description]
    row = rows[0]
    return dict(zip(cols, row, strict=True))


def _duck_stream(
    con: Any, path: Path, kw: dict[str, Any], sink: Sink, skip_space: bool, batch_rows: int
) -> _Scan:
    """Read the file with DuckDB in record batches of `batch_rows` into `sink`, in file order;
    padding after the delimiter is stripped from string columns but the first."""
    args = "".join(f", {k} := ?" for k in kw)
    rel = con.sql(f"SELECT * FROM read_csv(?{args})", params=[os.fspath(path), *kw.values()])
    reader = rel.to_arrow_reader(batch_rows)
    scan = _Scan()
    strings: list[str] | None = None
    for record_batch in _record_batches(reader):
        batch = pl.DataFrame(pl.from_arrow(record_batch))
        if strings is None:
            items = list(batch.schema.items())[1:]
            strings = [c for c, t in items if t == pl.String] if skip_space else []
        if strings:
            batch = batch.with_columns(pl.col(c).str.strip_chars_start(" ") for c in strings)
        if batch.height:
            sink.write(batch)
            scan.add(batch)
    if scan.head is None:  # no rows: the sink still gets the columns
        scan.head = pl.DataFrame(pl.from_arrow(reader.schema.empty_table()))
        sink.write(scan.head)
    return scan


def _record_batches(reader: Any) -> Any:
    """The reader's batches; DuckDB's errors raised while streaming (Arrow wraps them in an
    OSError) are raised as DuckDB's again, so a value past the sniffer's sample is retried."""
    import duckdb

    it = iter(reader)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except OSError as exc:
            text = str(exc)
            if "Conversion Error" in text:
                raise duckdb.ConversionException(text) from None
            raise duckdb.Error(text) from None
        yield batch


def _csv_error(exc: Exception, path: Path, *, name: str, file: str) -> SpecError:
    # DuckDB appends its search space and a list of generic fixes; the first lines say what
    lines = []
    for line in str(exc).strip().splitlines():
        if not line.strip() or line.startswith(("The search space", "Possible fix", "Column ")):
            break
        lines.append(line.strip())
    first = "; ".join(lines[:4])
    return SpecError(
        f"could not read {path} as CSV: {first}",
        file=file,
        field=f"sources.{name}",
        fix="set `delimiter:`, `quote:`, `header:` or `columns:` on the source, or DuckDB "
        "read_csv parameters in `options:` (e.g. encoding: latin-1, sample_size: -1, "
        "all_varchar: true)",
    )
