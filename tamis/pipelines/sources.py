"""Reading sources (CSV/TSV/Parquet/JSONL/JSON/HF save_to_disk) into Polars frames.

CSV and TSV files are read by DuckDB's `read_csv`, whose sniffer infers the delimiter, the quote,
whether the first line is a header, and each column's type (as pandas and DuckDB users see it:
UCI Adult reads as 32,561 rows with integer columns; blank lines are skipped). Values padded with a
space after the delimiter (`39, State-gov`) lose that space, as pandas' `skipinitialspace=True`
does (on by default for CSV, off for TSV). What was inferred is returned as the source's report,
with warnings such as a header row that looks like data.

Parquet (a file or a directory of `*.parquet` files), JSON Lines and JSON are read by Polars;
gzip-compressed files (`.csv.gz`, `.tsv.gz`, `.jsonl.gz`, ...) are read as they are.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tamis.errors import SpecError
from tamis.pipelines.catalog import Catalog
from tamis.pipelines.hashing import hash_file, hash_json

#: bump when reading behaviour changes, so source versions are re-imported
#: (2: CSV/TSV read by DuckDB's sniffer, padding after the delimiter stripped, header checks)
READER_VERSION = 2

#: source settings with a field of their own on `SourceSpec` (the rest go in `options:`)
CSV_SETTINGS = ("header", "columns", "delimiter", "quote", "skip_initial_space")

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
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?$")
_DATE_RE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2})?)?$")


@dataclass
class SourceRead:
    """A source's rows, what the reader inferred (delimiter, header, types...), and warnings."""

    frame: pl.DataFrame
    info: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        return {"reader": self.info, **({"warnings": self.warnings} if self.warnings else {})}


def source_fingerprint(path: Path, catalog: Catalog | None) -> str:
    """sha256 of a file (or of every file in a directory), cached by (path, size, mtime)."""
    if path.is_dir():
        parts = []
        for p in sorted(q for q in path.rglob("*") if q.is_file()):
            parts.append([str(p.relative_to(path)), source_fingerprint(p, catalog)])
        return hash_json(parts)
    stat = path.stat()
    if catalog is not None:
        cached = catalog.source_hash(str(path), stat.st_size, stat.st_mtime_ns)
        if cached:
            return cached
    sha = hash_file(path)
    if catalog is not None:
        catalog.remember_source_hash(str(path), stat.st_size, stat.st_mtime_ns, sha)
    return sha


def source_settings(src: Any) -> dict[str, Any]:
    """The settings of a `SourceSpec` that change what is read (part of the source's version id)."""
    out = {k: getattr(src, k) for k in CSV_SETTINGS if getattr(src, k, None) is not None}
    return out


def source_params(spec: Any, name: str) -> dict[str, Any]:
    """What a source's version id hashes besides the file's content: format, settings, reader."""
    src = spec.sources[name]
    return {
        "format": spec.source_format(name),
        "options": src.options,
        **source_settings(src),
        "reader": READER_VERSION,
    }


def load_source(spec: Any, name: str) -> SourceRead:
    """Read source `name` of a pipeline spec with its settings and options."""
    src = spec.sources[name]
    return read_source_report(
        spec.source_path(name),
        spec.source_format(name),
        src.options,
        name=name,
        file=spec.file,
        settings=source_settings(src),
    )


def source_paths(spec: Any, *, under: str | Path | None = None) -> dict[str, Path]:
    """Every source's absolute path; with `under`, refuse a source outside that folder.

    `tamis build` prints these paths (a pipeline may read files anywhere the user can) and
    `--sources-under DIR` refuses the rest. Paths are compared after resolving symlinks and
    `..`, so neither can reach outside.
    """
    paths = {name: spec.source_path(name) for name in spec.sources}
    if under is None:
        return paths
    base = Path(under).resolve()
    for name, path in paths.items():
        if not path.is_relative_to(base):
            raise SpecError(
                f"source '{name}' reads {path}, outside {base} (--sources-under)",
                file=spec.file,
                field=f"sources.{name}.path",
                fix="move the file under that folder, or drop --sources-under if you trust "
                "this pipeline",
            )
    return paths


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
    if not path.exists():
        raise SpecError(
            f"source file not found: {path}",
            file=file,
            field=f"sources.{name}.path",
            fix="paths are relative to the pipeline YAML; check the path",
        )
    settings = dict(settings or {})
    opts = dict(options)
    if fmt not in ("csv", "tsv") and settings:
        raise SpecError(
            f"{', '.join(sorted(settings))} apply to CSV/TSV sources, not {fmt}",
            file=file,
            field=f"sources.{name}",
            fix="remove them, or set `format: csv`",
        )
    check_size(path, fmt, name=name, file=file)
    try:
        if fmt in ("csv", "tsv"):
            return _read_csv(path, fmt, settings, opts, name=name, file=file)
        if fmt == "parquet":
            target: Any = path
            if path.is_dir():
                target = _parquet_files(path, name=name, file=file)
            return _polars_read(pl.read_parquet(target, **opts), "polars.read_parquet")
        if fmt == "jsonl":
            return _polars_read(pl.read_ndjson(_maybe_gunzip(path), **opts), "polars.read_ndjson")
        if fmt == "json":
            return _polars_read(pl.read_json(_maybe_gunzip(path), **opts), "polars.read_json")
        if fmt == "hf":
            return _polars_read(_read_hf(path, opts), "datasets.load_from_disk")
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


def _polars_read(frame: pl.DataFrame, reader: str) -> SourceRead:
    info = {"reader": reader, "rows": frame.height}
    return SourceRead(frame, info)


def _maybe_gunzip(path: Path) -> Any:
    """A `.gz` file's decompressed bytes (Polars' JSON readers do not decompress), else the path."""
    if path.suffix.lower() == ".gz":
        with gzip.open(path, "rb") as fh:
            return io.BytesIO(fh.read())
    return path


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


# --------------------------------------------------------------------------- CSV / TSV (DuckDB)


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


def _read_csv(
    path: Path,
    fmt: str,
    settings: dict[str, Any],
    opts: dict[str, Any],
    *,
    name: str,
    file: str,
) -> SourceRead:
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
            frame = _duck_read(con, path, kw)
        except duckdb.ConversionException as exc:
            if "sample_size" in kw:
                raise _csv_error(exc, path, name=name, file=file) from None
            # a value past the sniffer's sample does not fit the sniffed type: sniff every row
            kw["sample_size"] = -1
            sniffed = _sniff(con, path, kw)
            frame = _duck_read(con, path, kw)
            sample_note = "every row (a value beyond the default sample did not fit its type)"
        except duckdb.Error as exc:
            raise _csv_error(exc, path, name=name, file=file) from None
    finally:
        con.close()
    if skip_space:
        strings = [c for i, (c, t) in enumerate(frame.schema.items()) if i > 0 and t == pl.String]
        if strings:
            frame = frame.with_columns(pl.col(c).str.strip_chars_start(" ") for c in strings)
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
        "rows": frame.height,
        # DuckDB's types, under the frame's names (`columns:` renames what the sniffer saw)
        "types": dict(zip(frame.columns, [c["type"] for c in sniffed["Columns"]], strict=False)),
    }
    blank = _count_blank_lines(path)
    if blank is not None and frame.width > 1:
        info["blank_lines_skipped"] = blank
    elif blank:
        info["blank_lines"] = blank
        notes.append("in a one-column file a blank line is an empty value: read as null")
    if sample_note:
        info["type_sample"] = sample_note
    warnings = _header_warnings(frame, has_header, header_source, "columns" in settings)
    warnings += _date_format_warnings(frame, info, sniffed, kw, path)
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
    return SourceRead(frame, info, warnings)


def _date_format_warnings(
    frame: pl.DataFrame,
    info: dict[str, Any],
    sniffed: dict[str, Any],
    kw: dict[str, Any],
    path: Path,
) -> list[str]:
    """Record the sniffed date/timestamp formats; warn when day and month could be swapped.

    DuckDB picks `%d/%m/%Y` for `05/01/2024` when no value has a day above 12, where pandas and
    most US data read month first: the dates are then silently wrong for one reader or the other.
    """
    warns: list[str] = []
    for kind, key, option in (
        ("DATE", "DateFormat", "dateformat"),
        ("TIMESTAMP", "TimestampFormat", "timestampformat"),
    ):
        fmt = sniffed.get(key)
        cols = [c for c, t in info["types"].items() if t == kind and c in frame.columns]
        if not fmt or not cols:
            continue
        info[option] = fmt
        # year-first formats (ISO 8601, 2024-01-05) are read year-month-day by everyone
        if option in kw or "%d" not in fmt or "%m" not in fmt or fmt.startswith(("%Y", "%y")):
            continue
        ambiguous = [
            c for c in cols if frame.get_column(c).drop_nulls().dt.day().max() in range(1, 13)
        ]
        if ambiguous:
            swapped = fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")
            warns.append(
                f"{path.name}: column(s) {', '.join(repr(c) for c in ambiguous)} were read with "
                f"the sniffed {option} {fmt!r}, but no day is above 12, so {swapped!r} fits too "
                f"and would give other dates; fix: set `options: {{{option}: '{fmt}'}}` to "
                f"confirm, or `options: {{{option}: '{swapped}'}}`"
            )
    return warns


def _sniff(con: Any, path: Path, kw: dict[str, Any]) -> dict[str, Any]:
    sniff_kw = {k: v for k, v in kw.items() if k not in ("names", "column_names")}
    args = "".join(f", {k} := ?" for k in sniff_kw)
    cur = con.execute(f"SELECT * FROM sniff_csv(?{args})", [os.fspath(path), *sniff_kw.values()])
    rows = cur.fetchall()
    cols = [d[0] for d in cur.description]
    row = rows[0]
    return dict(zip(cols, row, strict=True))


def _duck_read(con: Any, path: Path, kw: dict[str, Any]) -> pl.DataFrame:
    args = "".join(f", {k} := ?" for k in kw)
    rel = con.sql(f"SELECT * FROM read_csv(?{args})", params=[os.fspath(path), *kw.values()])
    return pl.DataFrame(rel.pl())


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


def _count_blank_lines(path: Path) -> int | None:
    """Lines holding nothing but whitespace (the reader skips them); None if not countable."""
    suffix = path.suffix.lower()
    if suffix in (".zst", ".zstd", ".bz2", ".xz"):
        return None
    opener: Any = gzip.open if suffix == ".gz" else open
    blank = 0
    try:
        with opener(path, "rb") as fh:
            for line in fh:
                if not line.strip():
                    blank += 1
    except OSError:
        return None
    return blank


def _shape(value: str) -> str:
    """A cell's character classes: 'Alice' -> 'Aa', '2019-01-02' -> '9-9-9', 'a b' -> 'a a'."""
    out = re.sub(r"[A-Z]+", "A", value.strip())
    out = re.sub(r"[a-z]+", "a", out)
    out = re.sub(r"[0-9]+", "9", out)
    return re.sub(r"\s+", " ", out)


def _header_warnings(
    frame: pl.DataFrame, has_header: bool, header_from: str, named: bool
) -> list[str]:
    """Warn when the header row looks like data, or when there is none and columns got numbers."""
    if not has_header:
        if named or frame.width == 0 or header_from != "sniffed":
            return []  # named by `columns:`, or the user said there is no header
        return [
            f"no header row (the first line looks like data): columns are named "
            f"{frame.columns[0]}..{frame.columns[-1]}; fix: name them with `columns: [...]`, or "
            "set `header: true` if the first line holds names"
        ]
    if header_from != "sniffed":
        return []  # the user said there is a header
    names = frame.columns
    numeric = [c for c in names if _NUMBER_RE.match(c.strip()) or _DATE_RE.match(c.strip())]
    fix = (
        "if the first line is data, set `header: false` and name the columns with "
        "`columns: [...]`; if it is a header, set `header: true` to silence this"
    )
    if numeric:
        return [
            "the header row (sniffed) has cells that look like data, not names: "
            f"{', '.join(repr(c) for c in numeric[:5])}; fix: {fix}"
        ]
    if frame.height == 0:
        return []
    strings = [c for c, t in frame.schema.items() if t == pl.String]
    if len(strings) != frame.width:
        # a typed column whose first line did not parse as that type: a real header
        return []
    sample = frame.head(200)
    same = []
    for c in names:
        values = [v for v in sample[c].to_list() if v is not None]
        if not values:
            return []
        shapes = {_shape(v) for v in values}
        if c in values or _shape(c) in shapes:
            same.append(c)
    if len(same) == len(names):
        return [
            "the header row (sniffed) has the same shape as the rows below, so it may be data "
            f"(header: {', '.join(repr(c) for c in names[:5])}"
            f"{', ...' if len(names) > 5 else ''}); fix: {fix}"
        ]
    return []


def warn_stderr(source: str, warnings: list[str]) -> None:
    """Print a source's warnings on stderr (the build report carries them too)."""
    for w in warnings:
        sys.stderr.write(f"warning: source '{source}': {w}\n")


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
