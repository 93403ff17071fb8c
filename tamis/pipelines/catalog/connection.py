"""Connections to `catalog.duckdb`: short-lived, under the store lock, a missing catalog
rebuilt and a broken one set aside; queued run rows put in by the next writer."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from tamis.errors import StoreError
from tamis.pipelines.catalog.lock import StoreLock
from tamis.pipelines.catalog.schema import SCHEMA


class CatalogConnection:
    """Short-lived DuckDB connections to `catalog.duckdb`, serialised by an flock on `lock`."""

    def __init__(self, root: Path) -> None:
        self.path = root / "catalog.duckdb"
        self.lock_path = root / "lock"
        self.lock = StoreLock(self.lock_path, root)
        self.ref_log = root / "refs.log"
        self._initialised = False
        self._session: duckdb.DuckDBPyConnection | None = None
        #: fills a new, empty catalog from the version dirs (set by the Store); it gets the
        #: connection and must write through `self` (the connection is the session meanwhile)
        self.rebuild: Callable[[duckdb.DuckDBPyConnection], None] | None = None
        #: a directory with versions in it: a catalog missing there is rebuilt, not empty
        self.has_data: Callable[[], bool] = lambda: False

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

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """Hold the store's write lock without opening the catalog (to replace the file)."""
        return self.lock.exclusive()

    @contextmanager
    def connect(self, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection held under the store lock (exclusive to write, shared to read)."""
        if self._session is not None:
            yield self._session
            return
        missing = not self.path.exists()
        fd = self.lock.open(write=write or missing)
        writable = write or missing or os.access(self.lock_path, os.W_OK)
        try:
            needs_write = write or missing or (writable and bool(self._pending()))
            self.lock.flock(fd, fcntl.LOCK_EX if needs_write else fcntl.LOCK_SH)
            fresh = needs_write and not self.path.exists()
            if fresh:
                self._create()
            try:
                con = duckdb.connect(str(self.path), read_only=not needs_write)
            except duckdb.Error as exc:
                if not self.path.exists() or "lock" in str(exc).lower():
                    raise
                if fd is None or not writable:
                    raise StoreError(
                        f"the catalog {self.path} cannot be opened ({str(exc)[:200]})",
                        fix="the store is read-only: run `tamis verify --repair` where it can "
                        "be written",
                    ) from None
                self.lock.flock(fd, fcntl.LOCK_EX)  # upgrade: set the broken file aside, rebuild
                needs_write = True
                con = self._replace_broken(exc)
                fresh = True
            try:
                if needs_write and (not self._initialised or fresh):
                    con.execute(SCHEMA)
                    self._initialised = True
                if fresh and self.rebuild is not None and self.has_data():
                    self._session = con
                    try:
                        self.rebuild(con)
                    finally:
                        self._session = None
                if needs_write:
                    self._ingest(con)
                yield con
            except duckdb.Error as exc:
                if "No space left on device" in str(exc) or "os error 28" in str(exc):
                    raise self._no_space(exc) from None
                raise
            finally:
                con.close()
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def _create(self) -> None:
        """A new catalog with its tables, made beside and renamed into place: a process killed
        meanwhile never leaves a catalog file without tables (readers could not open it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            con = duckdb.connect(str(tmp))
            try:
                con.execute(SCHEMA)
            finally:
                con.close()
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
            tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)

    def _no_space(self, exc: BaseException) -> StoreError:
        return StoreError(
            f"out of disk space writing the catalog ({str(exc)[:200]}); the versions are intact",
            file=str(self.path),
            fix=f"free space on the disk of {self.path.parent.resolve()} and run the command "
            "again (`tamis verify` checks the store)",
        )

    def _replace_broken(self, exc: Exception) -> duckdb.DuckDBPyConnection:
        """Under the exclusive lock: open the catalog, or set an unreadable file aside."""
        try:
            return duckdb.connect(str(self.path))  # another process may have rebuilt it
        except duckdb.Error:
            pass
        aside = self.set_aside_file()
        sys.stderr.write(
            f"warning: the catalog {self.path} could not be opened ({str(exc)[:200]}); "
            f"it was moved to {aside} and is rebuilt from the version directories and "
            "refs.log\n"
        )
        return duckdb.connect(str(self.path))

    def set_aside_file(self) -> Path:
        """Move catalog.duckdb (and its WAL) into `damaged/`; never deleted."""
        damaged = self.path.parent / "damaged"
        damaged.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        aside = damaged / f"catalog.{stamp}.{uuid.uuid4().hex[:6]}.duckdb"
        os.rename(self.path, aside)
        wal = self.path.with_name(self.path.name + ".wal")
        if wal.exists():
            os.rename(wal, aside.with_name(aside.name + ".wal"))
        self._initialised = False
        return aside

    def query(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        with self.connect() as con:
            rel = con.execute(sql, params or [])
            cols = [d[0] for d in rel.description or []]
            return [dict(zip(cols, row, strict=True)) for row in rel.fetchall()]

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
