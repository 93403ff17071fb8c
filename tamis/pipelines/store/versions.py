"""The Store: read and write immutable versions (see the package docstring for the layout)."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from tamis import __version__
from tamis.errors import StoreError
from tamis.pipelines.hashing import hash_file
from tamis.pipelines.store.files import (
    HASHED,
    fsync_path,
    fsync_tree,
    hash_memo,
    is_no_space,
    schema_of,
    stat_key,
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
        version_id = self.resolve(ref)
        self.check_readable(version_id)
        return pl.scan_parquet(self.data_path(version_id))

    def read(self, ref: str) -> pl.DataFrame:
        version_id = self.resolve(ref)
        self.check_readable(version_id)
        try:
            return pl.read_parquet(self.data_path(version_id))
        except BaseException as exc:  # a Polars panic is a BaseException
            if isinstance(exc, KeyboardInterrupt | SystemExit | MemoryError):
                raise
            raise self._damaged(version_id, f"data.parquet cannot be read ({exc})") from None

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
        frame: pl.DataFrame | pl.LazyFrame,
        parents: list[dict[str, str]],
        step: dict[str, Any],
        seed: int | None,
        report: dict[str, Any] | None = None,
        tables: Mapping[str, pl.DataFrame] | None = None,
        artifacts: Path | None = None,
        pipeline: str | None = None,
        cache_key: str | None = None,
        run_id: str | None = None,
        replace: bool = False,
    ) -> Manifest:
        """Write a complete version atomically and index it; return its manifest.

        If the version already exists (same content address) it is kept as it is, unless
        `replace` is set (a forced rebuild whose output differs from the stored one).
        """
        check_version_id(version_id)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        self.housekeeping()
        tmp = self.tmp_dir / f"{version_id}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            data_path = tmp / "data.parquet"
            if isinstance(frame, pl.LazyFrame):
                frame.sink_parquet(data_path)
            else:
                frame.write_parquet(data_path)
            meta = pq.read_metadata(data_path)
            schema = schema_of(pl.read_parquet_schema(data_path))
            table_names: list[str] = []
            if tables:
                (tmp / "tables").mkdir()
                for table_name, table in tables.items():
                    table.write_parquet(tmp / "tables" / f"{table_name}.parquet")
                    table_names.append(table_name)
            artifact_names: list[str] = []
            if artifacts is not None and artifacts.exists() and any(artifacts.iterdir()):
                shutil.move(str(artifacts), str(tmp / "artifacts"))
                artifact_names = sorted(
                    str(p.relative_to(tmp / "artifacts"))
                    for p in (tmp / "artifacts").rglob("*")
                    if p.is_file()
                )
            content_hash = hash_file(data_path)
            HASHED[stat_key(data_path)] = content_hash  # rename keeps inode, size and mtime
            files: dict[str, FileRecord] = {}
            for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
                rel = path.relative_to(tmp).as_posix()
                st = path.stat()  # a rename keeps size and mtime: recorded to spot changes
                files[rel] = {
                    "size": st.st_size,
                    "mtime_ns": st.st_mtime_ns,
                    "sha256": content_hash if rel == "data.parquet" else hash_memo(path),
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
                "rows": meta.num_rows,
                "content_hash": content_hash,
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
                if previous.get("content_hash") != content_hash:
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

    def _no_space(self, exc: BaseException, frame: Any, name: str) -> StoreError:
        """One clear error for a full disk: the path, the space free and about how much the
        version needs (its in-memory size, an upper bound for Parquet)."""
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
