"""Reading sources (CSV/TSV/Parquet/JSONL/JSON/HF save_to_disk) into Polars frames."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import polars as pl

from tamis.errors import SpecError
from tamis.pipelines.catalog import Catalog
from tamis.pipelines.hashing import hash_file, hash_json

#: bump when reading behaviour changes, so source versions are re-imported
READER_VERSION = 1


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


def read_source(
    path: Path, fmt: str, options: dict[str, Any], *, name: str, file: str
) -> pl.DataFrame:
    if not path.exists():
        raise SpecError(
            f"source file not found: {path}",
            file=file,
            field=f"sources.{name}.path",
            fix="paths are relative to the pipeline YAML; check the path",
        )
    opts = dict(options)
    try:
        if fmt in ("csv", "tsv"):
            if fmt == "tsv":
                opts.setdefault("separator", "\t")
                opts.setdefault("quote_char", None)
            opts.setdefault("infer_schema_length", 10000)
            return pl.read_csv(path, **opts)
        if fmt == "parquet":
            return pl.read_parquet(path, **opts)
        if fmt == "jsonl":
            return pl.read_ndjson(path, **opts)
        if fmt == "json":
            return pl.read_json(path, **opts)
        if fmt == "hf":
            return _read_hf(path, opts)
    except SpecError:
        raise
    except Exception as exc:  # a reader error: say which source and how to fix it
        raise SpecError(
            f"could not read {path} as {fmt}: {exc}",
            file=file,
            field=f"sources.{name}",
            fix="set `format:` and reader `options:` (e.g. separator, has_header, quote_char)",
        ) from exc
    raise SpecError(f"unknown format '{fmt}'", file=file, field=f"sources.{name}.format")


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
