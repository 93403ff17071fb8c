"""The data file suffixes tamis reads and writes, and the format each one means (light: no
imports, so the CLI can use it at start-up); a source's format inferred from its path."""

from __future__ import annotations

from pathlib import Path

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

FORMATS = ("csv", "tsv", "parquet", "jsonl", "json", "hf")
SUFFIX_FORMATS = {
    **DATA_SUFFIXES,
    ".tab": "tsv",
    ".data": "csv",
    ".test": "csv",
    ".txt": "csv",
}
#: compression suffixes a reader decompresses itself (DuckDB: gzip, zstd; Polars: gzip)
COMPRESSION_SUFFIXES = {".gz": ("csv", "tsv", "jsonl", "json"), ".zst": ("csv", "tsv")}


def infer_format(path: Path) -> str | None:
    """A source's format from its suffix (`.csv.gz` -> csv) or folder content, or None.

    A folder holding `dataset_info.json`/`dataset_dict.json` is a Hugging Face `save_to_disk`
    dataset; a folder holding `.parquet` files (a partitioned output) is parquet.
    """
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        allowed = COMPRESSION_SUFFIXES[suffixes[-1]]
        fmt = SUFFIX_FORMATS.get(suffixes[-2]) if len(suffixes) > 1 else None
        return fmt if fmt in allowed else None
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            return "hf"
        if any(p.is_file() for p in path.rglob("*.parquet")):
            return "parquet"
        return None
    return SUFFIX_FORMATS.get(path.suffix.lower())
