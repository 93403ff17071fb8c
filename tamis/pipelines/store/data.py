"""A version's rows on disk: `data/` parts (this layout) or one `data.parquet` (older code).

A version written by this code keeps its rows in `data/part-00000.parquet`, ... (bounded size,
boundaries that depend only on the rows: `tamis.pipelines.engines.parts`); the manifest lists
them in order in `parts` (`path` relative to `data/`, rows, bytes, sha256) and its
`content_hash` is `parts_hash(parts)`, a tree over the parts. Versions written by older code
hold one `data.parquet` whose sha256 is the content hash and have no `parts`; they still read,
verify, export and repair.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from tamis.errors import StoreError
from tamis.pipelines.engines.parts import PartInfo, PartWriter, parts_hash, write_frame_parts
from tamis.pipelines.store.files import HASHED, schema_of, stat_key

DATA_DIR = "data"
OLD_DATA_FILE = "data.parquet"


def data_rels(manifest: Mapping[str, Any]) -> list[str]:
    """The data files of a version, relative to its dir, in order."""
    parts = manifest.get("parts")
    if parts is None:
        return [OLD_DATA_FILE]
    return [f"{DATA_DIR}/{p['path']}" for p in parts]


def write_frame(frame: pl.DataFrame | pl.LazyFrame, directory: Path) -> list[PartInfo]:
    """Write a frame as parts into `directory`; a LazyFrame is streamed batch by batch into a
    PartWriter (never collected whole)."""
    if isinstance(frame, pl.DataFrame):
        return write_frame_parts(frame, directory)
    writer = PartWriter(directory)
    for batch in frame.collect_batches(maintain_order=True):
        writer.write(batch)
    return writer.close(frame.collect_schema())


def adopt_parts(parts_dir: Path, parts: list[PartInfo], tmp_dir: Path) -> None:
    """Check that `parts_dir` (an engine's output, inside the store's tmp dir) holds exactly
    the listed parts with their sizes; nothing is read or hashed."""
    real, tmp_real = parts_dir.resolve(), tmp_dir.resolve()
    if tmp_real not in real.parents:
        raise StoreError(
            f"parts directory {parts_dir} is not inside the store's tmp dir {tmp_dir}",
            file=str(parts_dir),
            fix="write the parts into a directory from `Store.engine_tmp(...)`",
        )
    if not parts:
        raise StoreError(
            "a version needs at least one part (an empty output is one empty part)",
            file=str(parts_dir),
            fix="close the PartWriter (`close(schema)`) to get the parts list",
        )
    listed = {p["path"] for p in parts}
    found = {p.name for p in parts_dir.iterdir()} if parts_dir.is_dir() else set()
    for part in parts:
        path = parts_dir / part["path"]
        if "/" in part["path"] or not path.is_file():
            raise StoreError(
                f"part {part['path']} is not in {parts_dir}",
                file=str(path),
                fix="pass the parts list the PartWriter returned for this directory",
            )
        size = path.stat().st_size
        if size != part["bytes"]:
            raise StoreError(
                f"part {part['path']} has {size:,} bytes, its PartInfo says {part['bytes']:,}",
                file=str(path),
                fix="pass the parts list the PartWriter returned for this directory",
            )
        HASHED[stat_key(path)] = part["sha256"]  # a rename keeps inode, size and mtime
    extra = sorted(found - listed)
    if extra:
        raise StoreError(
            f"{parts_dir} holds files that are not listed parts: {', '.join(extra[:5])}",
            file=str(parts_dir),
            fix="keep spill files outside the parts directory",
        )


def content_of(parts: list[PartInfo]) -> tuple[int, str]:
    """(rows, content hash) of a version written as parts."""
    return sum(p["rows"] for p in parts), parts_hash(parts)


def check_data(vdir: Path, manifest: Mapping[str, Any], schema: list[dict[str, str]]) -> list[str]:
    """The full checks of a version's data files (after their hashes): Parquet row counts and
    schema against the manifest, the parts tree against the content hash, no stray parts."""
    problems: list[str] = []
    parts = manifest.get("parts")
    try:
        rels = data_rels(manifest)
        expected = [p["rows"] for p in parts] if parts is not None else [manifest.get("rows")]
    except (TypeError, KeyError):
        return ["manifest.json's parts list is malformed"]
    total = 0
    for rel, want in zip(rels, expected, strict=True):
        if not (vdir / rel).is_file():
            continue  # reported as missing
        try:
            rows = pq.read_metadata(vdir / rel).num_rows
            found = schema_of(pl.read_parquet_schema(vdir / rel))
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit | MemoryError):
                raise
            problems.append(f"{rel} cannot be read ({exc})")
            continue
        total += rows
        if rows != want:
            problems.append(f"{rel} has {rows:,} rows, the manifest says {want}")
        if found != schema:
            problems.append(f"{rel}'s schema differs from the manifest's")
    data = vdir / DATA_DIR
    if parts is not None and data.is_dir():
        listed = {p["path"] for p in parts}
        stray = sorted(e.name for e in data.iterdir() if e.name not in listed)
        if stray:
            problems.append(f"{DATA_DIR}/ holds files no part lists: {', '.join(stray[:5])}")
    return problems


def check_parts_listing(manifest: Mapping[str, Any]) -> list[str]:
    """Cheap invariants of a parts manifest (no file is read): rows add up, the content hash is
    the tree over the parts, each part is in `files` with its size and sha256."""
    parts = manifest.get("parts")
    if parts is None:
        return []
    problems: list[str] = []
    try:
        rows, tree = content_of(parts)
        rels = [(f"{DATA_DIR}/{p['path']}", p) for p in parts]
        if any(not isinstance(p["path"], str) or "/" in p["path"] for p in parts):
            raise ValueError(parts)
    except (TypeError, KeyError, ValueError):
        return ["manifest.json's parts list is malformed"]
    if rows != manifest.get("rows"):
        problems.append(f"the parts hold {rows:,} rows, the manifest says {manifest.get('rows')}")
    if tree != manifest.get("content_hash"):
        problems.append("the manifest's content hash is not the hash of its parts")
    files = manifest.get("files") or {}
    for rel, p in rels:
        rec = files.get(rel) if isinstance(files, dict) else None
        if not isinstance(rec, dict) or rec.get("sha256") != p.get("sha256"):
            problems.append(f"{rel} is not recorded in the manifest's files")
        elif rec.get("size") != p.get("bytes"):
            problems.append(f"{rel}: the manifest's files and parts differ")
    return problems


def uncompressed_bytes(paths: list[Path]) -> int:
    """Uncompressed size of Parquet files from their footers (no data read)."""
    total = 0
    for path in paths:
        meta = pq.read_metadata(path)
        total += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return total
