"""The catalog: an embedded DuckDB file that indexes versions, lineage edges, refs and runs.

The catalog is an index, not the source of truth: every version directory carries its own
manifest, so a catalog row can always be rebuilt from it (see `Store.reindex`). DuckDB allows one
writing process at a time, so every connection is opened briefly under the store's file lock.

Run rows may also be queued (`queue_runs`): written as a small JSON file under `index-pending/`
and put into the catalog by the next connection of any process, before it reads. Opening the
DuckDB file costs 15-30 ms, which is more than a small sweep's own bookkeeping; a queued row is
one atomic file write.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    id VARCHAR PRIMARY KEY,
    name VARCHAR,
    pipeline VARCHAR,
    step VARCHAR,
    step_type VARCHAR,
    created_at VARCHAR,
    rows BIGINT,
    columns INTEGER,
    content_hash VARCHAR,
    cache_key VARCHAR,
    schema_json VARCHAR,
    run_id VARCHAR
);
CREATE TABLE IF NOT EXISTS edges (
    parent VARCHAR,
    child VARCHAR,
    role VARCHAR
);
CREATE TABLE IF NOT EXISTS refs (
    ref VARCHAR PRIMARY KEY,
    version_id VARCHAR,
    updated_at VARCHAR
);
CREATE TABLE IF NOT EXISTS runs (
    id VARCHAR PRIMARY KEY,
    kind VARCHAR,
    name VARCHAR,
    started_at VARCHAR,
    finished_at VARCHAR,
    status VARCHAR,
    info_json VARCHAR
);
CREATE TABLE IF NOT EXISTS source_files (
    path VARCHAR PRIMARY KEY,
    size BIGINT,
    mtime_ns BIGINT,
    sha256 VARCHAR
);
"""


class Catalog:
    """Short-lived DuckDB connections to `catalog.duckdb`, serialised by an flock on `lock`."""

    def __init__(self, root: Path) -> None:
        self.path = root / "catalog.duckdb"
        self.lock_path = root / "lock"
        self._initialised = False
        self._session: duckdb.DuckDBPyConnection | None = None

    @contextmanager
    def session(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write connection reused by every call inside the block (a batch of small writes).

        Opening the DuckDB file costs ~10-30 ms, so a no-op rebuild batches its checks and ref
        updates here; hold a session only for short bursts, since it blocks other builds.
        """
        if self._session is not None:
            yield self._session
            return
        with self.connect(write=True) as con:
            self._session = con
            try:
                yield con
            finally:
                self._session = None

    @contextmanager
    def connect(self, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection held under the store lock (exclusive to write, shared to read)."""
        if self._session is not None:
            yield self._session
            return
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            needs_write = write or not self.path.exists() or bool(self._pending())
            fcntl.flock(fd, fcntl.LOCK_EX if needs_write else fcntl.LOCK_SH)
            con = duckdb.connect(str(self.path), read_only=not needs_write)
            try:
                if needs_write and not self._initialised:
                    con.execute(SCHEMA)
                    self._initialised = True
                if needs_write:
                    self._ingest(con)
                yield con
            finally:
                con.close()
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def query(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        with self.connect() as con:
            rel = con.execute(sql, params or [])
            cols = [d[0] for d in rel.description or []]
            return [dict(zip(cols, row, strict=True)) for row in rel.fetchall()]

    def add_version(self, manifest: dict[str, Any]) -> None:
        step = manifest.get("step") or {}
        with self.connect(write=True) as con:
            con.execute("BEGIN")
            con.execute("DELETE FROM versions WHERE id = ?", [manifest["id"]])
            con.execute("DELETE FROM edges WHERE child = ?", [manifest["id"]])
            con.execute(
                "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    manifest["id"],
                    manifest.get("name"),
                    manifest.get("pipeline"),
                    step.get("name"),
                    step.get("type"),
                    manifest.get("created_at"),
                    manifest.get("rows"),
                    len(manifest.get("schema", [])),
                    manifest.get("content_hash"),
                    manifest.get("cache_key"),
                    json.dumps(manifest.get("schema", [])),
                    manifest.get("run_id"),
                ],
            )
            for parent in manifest.get("parents", []):
                con.execute(
                    "INSERT INTO edges VALUES (?, ?, ?)",
                    [parent["id"], manifest["id"], parent.get("role", "input")],
                )
            con.execute("COMMIT")

    def missing_versions(self, ids: list[str]) -> list[str]:
        """Which of these version ids have no catalog row (written to disk, crashed before)."""
        if not ids:
            return []
        with self.connect() as con:
            known = {
                r[0]
                for r in con.execute(
                    "SELECT id FROM versions WHERE list_contains(?, id)", [ids]
                ).fetchall()
            }
        return [i for i in ids if i not in known]

    def set_ref(self, ref: str, version_id: str, when: str) -> None:
        with self.connect(write=True) as con:
            con.execute(
                "INSERT OR REPLACE INTO refs VALUES (?, ?, ?)",
                [ref, version_id, when],
            )

    def record_run(self, run: dict[str, Any]) -> None:
        with self.connect(write=True) as con:
            con.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    run["id"],
                    run.get("kind"),
                    run.get("name"),
                    run.get("started_at"),
                    run.get("finished_at"),
                    run.get("status"),
                    json.dumps(run.get("info", {}), default=str),
                ],
            )

    @property
    def pending_dir(self) -> Path:
        return self.path.parent / "index-pending"

    def _pending(self) -> list[Path]:
        try:
            return sorted(p for p in self.pending_dir.iterdir() if p.suffix == ".json")
        except FileNotFoundError:
            return []

    def queue_runs(self, runs: list[dict[str, Any]]) -> None:
        """Run rows for the next connection to put in the catalog (see the module docstring)."""
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.json"
        tmp = self.pending_dir / f".{name}.tmp"
        with open(tmp, "w") as fh:
            json.dump(runs, fh, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.pending_dir / name)

    def _ingest(self, con: duckdb.DuckDBPyConnection) -> None:
        """Put queued run rows in the catalog (under the write lock), then drop their files."""
        files = self._pending()
        if not files:
            return
        runs: list[dict[str, Any]] = []
        for path in files:
            try:
                runs.extend(json.loads(path.read_text()))
            except (OSError, ValueError):  # unreadable: kept aside for a person, never retried
                with contextlib.suppress(OSError):
                    path.rename(path.with_suffix(".bad"))
        self._insert_runs(con, runs)
        for path in files:
            path.unlink(missing_ok=True)

    @staticmethod
    def _insert_runs(con: duckdb.DuckDBPyConnection, runs: list[dict[str, Any]]) -> None:
        """Multi-row VALUES: ~10x faster than DuckDB's executemany for a few dozen rows."""
        if not runs:
            return
        rows = [
            [
                r["id"],
                r.get("kind"),
                r.get("name"),
                r.get("started_at"),
                r.get("finished_at"),
                r.get("status"),
                json.dumps(r.get("info", {}), default=str),
            ]
            for r in {r["id"]: r for r in runs}.values()  # the latest row per id
        ]
        con.execute("BEGIN")
        for i in range(0, len(rows), 500):
            chunk = rows[i : i + 500]
            values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
            con.execute(
                f"INSERT OR REPLACE INTO runs VALUES {values}", [x for r in chunk for x in r]
            )
        con.execute("COMMIT")

    def source_hash(self, path: str, size: int, mtime_ns: int) -> str | None:
        if not self.path.exists():
            return None
        rows = self.query(
            "SELECT sha256 FROM source_files WHERE path = ? AND size = ? AND mtime_ns = ?",
            [path, size, mtime_ns],
        )
        return str(rows[0]["sha256"]) if rows else None

    def remember_source_hash(self, path: str, size: int, mtime_ns: int, sha: str) -> None:
        with self.connect(write=True) as con:
            con.execute(
                "INSERT OR REPLACE INTO source_files VALUES (?, ?, ?, ?)",
                [path, size, mtime_ns, sha],
            )
