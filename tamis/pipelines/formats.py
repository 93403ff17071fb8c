"""The data file suffixes tamis reads and writes, and the format each one means (light: no
imports, so the CLI can use it at start-up)."""

from __future__ import annotations

#: suffix -> format for the files a DATA argument or an export target may name
DATA_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}
