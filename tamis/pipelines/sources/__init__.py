"""Reading sources (CSV/TSV/Parquet/JSONL/JSON/HF save_to_disk) into Polars frames.

CSV and TSV files are read by DuckDB's `read_csv`, whose sniffer infers the delimiter, the quote,
whether the first line is a header, and each column's type (as pandas and DuckDB users see it:
UCI Adult reads as 32,561 rows with integer columns; blank lines are skipped). Values padded with a
space after the delimiter (`39, State-gov`) lose that space, as pandas' `skipinitialspace=True`
does (on by default for CSV, off for TSV). What was inferred is returned as the source's report,
with warnings such as a header row that looks like data.

Parquet (a file or a directory of `*.parquet` files), JSON Lines and JSON are read by Polars;
gzip-compressed files (`.csv.gz`, `.tsv.gz`, `.jsonl.gz`, ...) are read as they are. A build
streams CSV/TSV, JSON Lines and Parquet into Parquet parts batch by batch (never whole in memory).

Modules: `settings` (fingerprint, settings, reader version, paths), `readers` (any format, the
memory budget), `csv` (DuckDB's CSV reader), `csv_checks` (its warnings), `stream` (sinks,
streamed JSON Lines and Parquet).
"""

from __future__ import annotations

from tamis.pipelines.sources.readers import (
    check_size,
    import_source_parts,
    load_source,
    memory_budget,
    read_source,
    read_source_report,
)
from tamis.pipelines.sources.settings import (
    CSV_SETTINGS,
    READER_VERSION,
    SourceRead,
    glob_files,
    is_glob,
    reader_version,
    source_exists,
    source_fingerprint,
    source_params,
    source_paths,
    source_settings,
    warn_stderr,
)

__all__ = [
    "CSV_SETTINGS",
    "READER_VERSION",
    "SourceRead",
    "check_size",
    "import_source_parts",
    "load_source",
    "memory_budget",
    "read_source",
    "read_source_report",
    "reader_version",
    "glob_files",
    "is_glob",
    "source_exists",
    "source_fingerprint",
    "source_params",
    "source_paths",
    "source_settings",
    "warn_stderr",
]
