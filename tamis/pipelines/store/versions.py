"""The Store: read and write immutable versions (see the package docstring for the layout)."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from tamis import __version__
from tamis.errors import StoreError
from tamis.pipelines.engines.parts import PartInfo
from tamis.pipelines.store.data import (
    DATA_DIR,
    OLD_DATA_FILE,
    adopt_parts,
    content_of,
    uncompressed_bytes,
    write_frame,
)
from tamis.pipelines.store.files import (
    fsync_path,
    fsync_tree,
    hash_memo,
    is_no_space,
    schema_of,
)
from tamis.pipelines.store.manifest import FileRecord, Manifest
from tamis.pipelines.store.names import check_version_id, now
from tamis.pipelines.store.refs import CatalogViews


class Store(CatalogViews):
    """A directory of immutable dataset versions plus a DuckDB catalog that indexes them."""

    def __init__(self, root: str | Path | None = None) -> None:
        super().__init__(root)
        self.catalog.rebuild = self._fill_catalog
        self.catalog.has_data = self._has_data
        self._housekept = False

    def manifest(self, ref: str) -> Manifest:
        return self.manifest_by_id(self.resolve(ref))

    def scan(self, ref: str) -> pl.LazyFrame:
        """A LazyFrame over a version's parts in order (checked first, as `read`)."""
        version_id = self.resolve(ref)
        self.check_readable(version_id)
        return pl.scan_parquet(self.data_files(version_id))

    def read(self, ref: str) -> pl.DataFrame:
        """A version's rows, collected (for small data; `scan` streams)."""
        return self._collect(ref, None)

    def head(self, ref: str, rows: int) -> pl.DataFrame:
        """A version's first `rows` rows, read from its first parts only."""
        return self._collect(ref, rows)

    def _collect(self, ref: str, rows: int | None) -> pl.DataFrame:
        version_id = self.resolve(ref)
        self.check_readable(version_id)
        files = self.data_files(version_id)
        try:
            frame = pl.scan_parquet(files)
            return (frame if rows is None else frame.head(rows)).collect()
        except BaseException as exc:  # a Polars panic is a BaseException
            if isinstance(exc, KeyboardInterrupt | SystemExit | MemoryError):
                raise
            where = files[0].name if len(files) == 1 else "its data"
            raise self._damaged(version_id, f"{where} cannot be read ({exc})") from None

    def estimate_bytes(self, ref: str) -> int:
        """A version's uncompressed size from its Parquet footers (no data read): what a step
        that materialises it holds, for the engine's memory check."""
        version_id = self.resolve(ref)
        try:
            return uncompressed_bytes(self.data_files(version_id))
        except OSError as exc:
            raise self._damaged(version_id, f"its data cannot be read ({exc})") from None

    def engine_tmp(self, prefix: str) -> Path:
        """A fresh directory inside the store's tmp dir for an engine's parts and spill
        (`<prefix>.<pid>.<nonce>`): housekeeping removes it once its process is gone."""
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", prefix)[:80] or "engine"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        path = self.tmp_dir / f"{safe}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        path.mkdir()
        return path

    def table(self, ref: str, name: str) -> pl.DataFrame:
        version_id = self.resolve(ref)
        known = self.manifest_by_id(version_id).get("tables") or []
        if name not in known:  # only the manifest's tables: never a path
            raise StoreError(
                f"version {ref} has no report table '{name}'",
                fix=f"its tables: {', '.join(known) or '(none)'}",
            )
        path = self.version_dir(version_id) / "tables" / f"{name}.parquet"
        problems = self.check_version(version_id, only=[f"tables/{name}.parquet"])
        if not path.is_file():
            problems = problems or [f"tables/{name}.parquet is missing"]
        if problems:
            raise self._damaged(version_id, problems[0])
        try:
            return pl.read_parquet(path)
        except BaseException as exc:  # a Polars panic is a BaseException
            if isinstance(exc, KeyboardInterrupt | SystemExit | MemoryError):
                raise
            raise self._damaged(version_id, f"{path.name} cannot be read ({exc})") from None

    def artifact_dir(self, ref: str) -> Path:
        return self.version_dir(self.resolve(ref)) / "artifacts"

    # ------------------------------------------------------------------ writing
    def write_version(
        self,
        *,
        version_id: str,
        name: str,
        frame: pl.DataFrame | pl.LazyFrame | None = None,
        parts_dir: Path | None = None,
        parts: list[PartInfo] | None = None,
        parents: list[dict[str, str]],
        step: dict[str, Any],
        seed: int | None,
        report: dict[str, Any] | None = None,
        tables: Mapping[str, pl.DataFrame | pl.LazyFrame] | None = None,
        artifacts: Path | None = None,
        pipeline: str | None = None,
        cache_key: str | None = None,
        run_id: str | None = None,
        replace: bool = False,
    ) -> Manifest:
        """Write a complete version atomically and index it; return its manifest.

        The rows come from `frame` (written as parts here; a LazyFrame is streamed, never
        collected whole) or from `parts_dir` + `parts` (a directory inside `tmp_dir` that an
        engine filled with the listed parts: moved in as `data/`, not rewritten nor re-hashed).
        If the version already exists (same content address) it is kept as it is, unless
        `replace` is set (a forced rebuild whose output differs from the stored one).
        """
        check_version_id(version_id)
        if (frame is None) == (parts_dir is None) or (parts_dir is None) != (parts is None):
            raise StoreError(
                f"write_version('{name}') needs either frame, or parts_dir with parts",
                fix="pass frame=..., or parts_dir=... and parts=... (from a PartWriter)",
            )
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        self.housekeeping()
        tmp = self.tmp_dir / f"{version_id}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            data_dir = tmp / DATA_DIR
            if parts_dir is not None and parts is not None:
                adopt_parts(parts_dir, parts, self.tmp_dir)
                os.rename(parts_dir, data_dir)
            else:
                assert frame is not None
                parts = write_frame(frame, data_dir)
            rows, content_hash = content_of(parts)
            schema = schema_of(pl.read_parquet_schema(data_dir / parts[0]["path"]))
            table_names: list[str] = []
            if tables:
                (tmp / "tables").mkdir()
                for table_name, table in tables.items():
                    target = tmp / "tables" / f"{table_name}.parquet"
                    if isinstance(table, pl.LazyFrame):  # an engine's spilled table: streamed
                        table.sink_parquet(target, engine="streaming")
                    else:
                        table.write_parquet(target)
                    table_names.append(table_name)
            artifact_names: list[str] = []
            if artifacts is not None and artifacts.exists() and any(artifacts.iterdir()):
                shutil.move(str(artifacts), str(tmp / "artifacts"))
                artifact_names = sorted(
                    str(p.relative_to(tmp / "artifacts"))
                    for p in (tmp / "artifacts").rglob("*")
                    if p.is_file()
                )
            known = {f"{DATA_DIR}/{p['path']}": p["sha256"] for p in parts}
            files: dict[str, FileRecord] = {}
            for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
                rel = path.relative_to(tmp).as_posix()
                st = path.stat()  # a rename keeps size and mtime: recorded to spot changes
                files[rel] = {
                    "size": st.st_size,
                    "mtime_ns": st.st_mtime_ns,
                    "sha256": known.get(rel) or hash_memo(path),
                }
            manifest: Manifest = {
                "id": version_id,
                "name": name,
                "pipeline": pipeline,
                "created_at": now(),
                "parents": parents,
                "step": step,
                "seed": seed,
                "schema": schema,
                "rows": rows,
                "content_hash": content_hash,
                "parts": parts,
                "cache_key": cache_key,
                "run_id": run_id,
                "tamis_version": __version__,
                "report": report or {},
                "tables": table_names,
                "artifacts": artifact_names,
                "files": files,
            }
            with open(tmp / "manifest.json", "w") as fh:
                json.dump(manifest, fh, indent=2, default=str)
            fsync_tree(tmp)
            final = self.version_dir(version_id)
            if final.exists() and self.check_version(version_id):
                self.set_aside(version_id)  # damaged (or no manifest): rebuilt, kept aside
            if final.exists():
                if not replace:
                    shutil.rmtree(tmp, ignore_errors=True)
                    existing = self.manifest_by_id(version_id)
                    self.catalog.add_version(existing)
                    return existing
                previous = self.manifest_by_id(version_id)
                if not self._same_content(version_id, previous, content_hash, data_dir, parts):
                    # other rows under the same id (a forced rebuild of a step that is not
                    # deterministic, e.g. DP): the rows someone may have released are kept
                    kept = self.set_aside(version_id, into=self.replaced_dir)
                    manifest["replaced"] = {
                        "content_hash": previous.get("content_hash"),
                        "kept_in": str(kept),
                    }
                    with open(tmp / "manifest.json", "w") as fh:
                        json.dump(manifest, fh, indent=2, default=str)
                    fsync_path(tmp / "manifest.json")
                    os.rename(tmp, final)
                else:
                    trash = self.tmp_dir / f"trash.{version_id}.{uuid.uuid4().hex[:8]}"
                    os.rename(final, trash)
                    os.rename(tmp, final)
                    shutil.rmtree(trash, ignore_errors=True)
            else:
                try:
                    os.rename(tmp, final)
                except OSError:
                    # another build wrote the same content address first: theirs is as good
                    shutil.rmtree(tmp, ignore_errors=True)
                    existing = self.manifest_by_id(version_id)
                    self.catalog.add_version(existing)
                    return existing
            fsync_path(self.versions_dir)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if is_no_space(exc):
                raise self._no_space(exc, frame, name) from None
            raise
        self.catalog.add_version(manifest)  # the catalog row is written last
        return manifest

    def _same_content(
        self,
        version_id: str,
        previous: Manifest,
        content_hash: str,
        data_dir: Path,
        parts: list[PartInfo],
    ) -> bool:
        """Whether a rebuild holds the stored version's rows: the content hashes, or for a
        version written by older code (one data.parquet, another hash) the rows themselves."""
        if previous.get("content_hash") == content_hash:
            return True
        if "parts" in previous:
            return False
        try:
            old = pl.read_parquet(self.version_dir(version_id) / OLD_DATA_FILE)
            new = pl.scan_parquet([data_dir / p["path"] for p in parts]).collect()
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit | MemoryError):
                raise
            return False
        return old.equals(new)

    def _no_space(self, exc: BaseException, frame: Any, name: str) -> StoreError:
        """One clear error for a full disk: the path, the space free and about how much the
        version needs (a DataFrame's in-memory size, an upper bound for Parquet)."""
        try:
            free = shutil.disk_usage(self.root).free
        except OSError:
            free = -1
        needed = frame.estimated_size() if isinstance(frame, pl.DataFrame) else None
        need = f"about {needed / 1e6:,.1f} MB" if needed is not None else "more space"
        return StoreError(
            f"out of disk space writing version '{name}' "
            f"({need} needed, {max(free, 0) / 1e6:,.1f} MB free); the store is unchanged",
            file=getattr(exc, "filename", None) or str(self.tmp_dir),
            fix=f"free space on the disk of {self.root.resolve()} (or use --store on another "
            "disk) and build again: finished steps are cached",
        )
