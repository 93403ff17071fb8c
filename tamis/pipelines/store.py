"""The version store: immutable, content-addressed dataset versions on local disk.

Layout of a store directory (default `./.tamis`, or `--store DIR`, or `TAMIS_STORE`):

    catalog.duckdb            index of versions, lineage edges, refs, runs (DuckDB)
    lock                      flock that serialises catalog writers
    versions/<id>/            one immutable version:
        data.parquet          the rows
        manifest.json         id, name, parents, step + canonical params, seed, schema, rows,
                              content hash, tamis version, report
        tables/<name>.parquet large report tables (clusters, issue lists, ...)
        artifacts/            files a step keeps beside its output (e.g. a fitted model)
    tmp/                      versions being written; never read

Crash safety: a version is written into `tmp/`, every file is fsynced, then the directory is
renamed into `versions/` in one atomic step, and only then is the catalog row written. A crash
before the rename leaves only litter in `tmp/` (cleared on the next write); a crash after the
rename but before the catalog row is healed by `reindex`, which the runner calls for any version
it finds on disk but not in the catalog.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from tamis import __version__
from tamis.errors import StoreError
from tamis.pipelines.catalog import Catalog
from tamis.pipelines.hashing import hash_file

DEFAULT_STORE = ".tamis"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def default_store_path() -> Path:
    return Path(os.environ.get("TAMIS_STORE") or DEFAULT_STORE)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            _fsync_path(Path(dirpath) / name)
        _fsync_path(Path(dirpath))


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON next to `path` then rename over it, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w") as fh:
        json.dump(payload, fh, indent=2, sort_keys=False, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def schema_of(frame_schema: Mapping[str, pl.DataType]) -> list[dict[str, str]]:
    return [{"name": name, "dtype": str(dtype)} for name, dtype in frame_schema.items()]


class Store:
    """A directory of immutable dataset versions plus a DuckDB catalog that indexes them."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_store_path()
        self.versions_dir = self.root / "versions"
        self.tmp_dir = self.root / "tmp"
        self.runs_dir = self.root / "runs"
        self.catalog = Catalog(self.root)

    # ------------------------------------------------------------------ paths and lookups
    def version_dir(self, version_id: str) -> Path:
        return self.versions_dir / version_id

    def data_path(self, version_id: str) -> Path:
        return self.version_dir(version_id) / "data.parquet"

    def has_version(self, version_id: str) -> bool:
        return (self.version_dir(version_id) / "manifest.json").exists()

    def manifest(self, ref: str) -> dict[str, Any]:
        version_id = self.resolve(ref)
        with open(self.version_dir(version_id) / "manifest.json") as fh:
            manifest: dict[str, Any] = json.load(fh)
        return manifest

    def scan(self, ref: str) -> pl.LazyFrame:
        return pl.scan_parquet(self.data_path(self.resolve(ref)))

    def read(self, ref: str) -> pl.DataFrame:
        return pl.read_parquet(self.data_path(self.resolve(ref)))

    def table(self, ref: str, name: str) -> pl.DataFrame:
        path = self.version_dir(self.resolve(ref)) / "tables" / f"{name}.parquet"
        if not path.exists():
            raise StoreError(f"version {ref} has no report table '{name}'")
        return pl.read_parquet(path)

    def artifact_dir(self, ref: str) -> Path:
        return self.version_dir(self.resolve(ref)) / "artifacts"

    def resolve(self, ref: str) -> str:
        """An id, an unambiguous id prefix, or a ref (`<pipeline>/<step>`) -> a version id."""
        ref = ref.strip()
        if not ref:
            raise StoreError("empty version reference", fix="pass an id, id prefix or ref")
        if not self.catalog.path.exists():
            raise StoreError(
                f"no store at {self.root}",
                fix="build a pipeline first (`tamis build PIPELINE.yaml`) or pass --store DIR",
            )
        rows = self.catalog.query("SELECT version_id FROM refs WHERE ref = ?", [ref])
        if rows:
            return str(rows[0]["version_id"])
        if len(ref) == 64 and self.has_version(ref):
            return ref
        if all(c in "0123456789abcdef" for c in ref.lower()) and len(ref) >= 4:
            hits = self.catalog.query(
                "SELECT id FROM versions WHERE id LIKE ? ORDER BY id", [ref.lower() + "%"]
            )
            if len(hits) == 1:
                return str(hits[0]["id"])
            if len(hits) > 1:
                raise StoreError(
                    f"id prefix '{ref}' is ambiguous ({len(hits)} versions)",
                    fix="give more characters of the id",
                )
        near = self.catalog.query(
            "SELECT ref FROM refs WHERE ref LIKE ? ORDER BY ref LIMIT 8",
            [f"%{ref.split('/')[-1]}%"],
        )
        hint = ", ".join(r["ref"] for r in near) if near else "see `tamis versions`"
        raise StoreError(f"no version or ref named '{ref}'", fix=f"known refs: {hint}")

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
    ) -> dict[str, Any]:
        """Write a complete version atomically and index it; return its manifest.

        If the version already exists (same content address) it is kept as it is, unless
        `replace` is set (a forced rebuild whose output differs from the stored one).
        """
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.versions_dir.mkdir(parents=True, exist_ok=True)
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
            manifest: dict[str, Any] = {
                "id": version_id,
                "name": name,
                "pipeline": pipeline,
                "created_at": now(),
                "parents": parents,
                "step": step,
                "seed": seed,
                "schema": schema,
                "rows": meta.num_rows,
                "content_hash": hash_file(data_path),
                "cache_key": cache_key,
                "run_id": run_id,
                "tamis_version": __version__,
                "report": report or {},
                "tables": table_names,
                "artifacts": artifact_names,
            }
            with open(tmp / "manifest.json", "w") as fh:
                json.dump(manifest, fh, indent=2, default=str)
            _fsync_tree(tmp)
            final = self.version_dir(version_id)
            if final.exists():
                if not replace:
                    shutil.rmtree(tmp, ignore_errors=True)
                    existing = self.manifest_by_id(version_id)
                    self.catalog.add_version(existing)
                    return existing
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
            _fsync_path(self.versions_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.catalog.add_version(manifest)  # the catalog row is written last
        return manifest

    def manifest_by_id(self, version_id: str) -> dict[str, Any]:
        with open(self.version_dir(version_id) / "manifest.json") as fh:
            manifest: dict[str, Any] = json.load(fh)
        return manifest

    def set_ref(self, ref: str, version_id: str) -> None:
        self.catalog.set_ref(ref, version_id, now())

    def ensure_indexed(self, version_id: str) -> dict[str, Any]:
        """Index a complete version that is on disk but missing from the catalog (crash heal)."""
        manifest = self.manifest_by_id(version_id)
        if not self.catalog.query("SELECT id FROM versions WHERE id = ?", [version_id]):
            self.catalog.add_version(manifest)
        return manifest

    def reindex(self) -> int:
        """Rebuild catalog rows from manifests on disk; returns how many rows were added."""
        added = 0
        if not self.versions_dir.exists():
            return 0
        known = (
            {r["id"] for r in self.catalog.query("SELECT id FROM versions")}
            if (self.catalog.path.exists())
            else set()
        )
        for entry in sorted(self.versions_dir.iterdir()):
            if entry.name not in known and (entry / "manifest.json").exists():
                self.catalog.add_version(self.manifest_by_id(entry.name))
                added += 1
        return added

    def clean_tmp(self, older_than_s: float = 3600.0) -> None:
        """Remove litter that crashed writers left in tmp/ (only old entries: others may be live)."""
        if not self.tmp_dir.exists():
            return
        cutoff = datetime.now().timestamp() - older_than_s
        for entry in self.tmp_dir.iterdir():
            if entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)

    # ------------------------------------------------------------------ queries
    def list_versions(self, pipeline: str | None = None) -> list[dict[str, Any]]:
        if not self.catalog.path.exists():
            return []
        sql = (
            "SELECT v.id, v.name, v.pipeline, v.step_type, v.rows, v.columns, v.created_at, "
            "list(r.ref ORDER BY r.ref) FILTER (WHERE r.ref IS NOT NULL) AS refs "
            "FROM versions v LEFT JOIN refs r ON r.version_id = v.id "
        )
        params: list[Any] = []
        if pipeline:
            sql += "WHERE v.pipeline = ? "
            params.append(pipeline)
        sql += "GROUP BY ALL ORDER BY v.created_at"
        rows = self.catalog.query(sql, params)
        for row in rows:
            row["refs"] = list(row["refs"] or [])
        return rows

    def lineage(self, ref: str) -> dict[str, Any]:
        """All ancestors of a version, as nodes and edges, from a recursive catalog query."""
        version_id = self.resolve(ref)
        edges = self.catalog.query(
            """
            WITH RECURSIVE anc(parent, child, role) AS (
                SELECT parent, child, role FROM edges WHERE child = ?
                UNION
                SELECT e.parent, e.child, e.role FROM edges e JOIN anc a ON e.child = a.parent
            )
            SELECT parent, child, role FROM anc
            """,
            [version_id],
        )
        ids = {version_id} | {e["parent"] for e in edges}
        nodes = self.catalog.query(
            "SELECT id, name, step_type, rows, created_at FROM versions WHERE list_contains(?, id)",
            [sorted(ids)],
        )
        return {"id": version_id, "nodes": nodes, "edges": edges}

    def record_run(self, run: dict[str, Any]) -> None:
        self.catalog.record_run(run)
