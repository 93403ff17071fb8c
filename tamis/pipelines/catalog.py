"""The catalog: an embedded DuckDB file that indexes versions, lineage edges, refs and runs.

The catalog is an index, not the source of truth: every version directory carries its own
manifest, so a catalog row can always be rebuilt from it (see `Store.reindex`). DuckDB allows one
writing process at a time, so every connection is opened briefly under the store's file lock.

Refs are also appended to `refs.log` (JSON lines, fsynced, one line per build's batch of refs)
before they go into the catalog, so a lost or garbage catalog can be rebuilt, refs included,
from the version directories and that log (`Store.rebuild_catalog`, `tamis verify --repair`).
A missing catalog is rebuilt by the first connection that finds version directories; a file
that DuckDB cannot open is set aside into `damaged/` (never deleted) and rebuilt, with a warning.

Run rows may also be queued (`queue_runs`): written as a small JSON file under `index-pending/`
and put into the catalog by the next connection of any process, before it reads. Opening the
DuckDB file costs 15-30 ms, which is more than a small sweep's own bookkeeping; a queued row is
one atomic file write.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from tamis.errors import StoreError

#: seconds before a process waiting for the store lock says so on stderr
LOCK_NOTICE_S = 1.0
DEFAULT_LOCK_TIMEOUT_S = 600.0


def lock_timeout() -> float:
    """Seconds to wait for the store lock before giving up (TAMIS_LOCK_TIMEOUT, default 600)."""
    raw = os.environ.get("TAMIS_LOCK_TIMEOUT")
    if not raw:
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise StoreError(
            f"TAMIS_LOCK_TIMEOUT={raw!r} is not a number of seconds",
            field="TAMIS_LOCK_TIMEOUT",
            fix="set it to e.g. 60, or unset it (600 s)",
        )
    return value


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

    def _open_lock(self, write: bool) -> int | None:
        """The lock file's descriptor; on a read-only store a read gets a read-only one (or
        none: nobody can write there), and a write a clear error."""
        try:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            if write:
                raise StoreError(
                    f"the store {self.path.parent} is read-only ({exc.strerror})",
                    file=str(self.lock_path),
                    fix="versions, show, export and verify can read it; build into a store "
                    "you can write (--store DIR)",
                ) from None
            with contextlib.suppress(OSError):
                return os.open(self.lock_path, os.O_RDONLY)
            return None

    def _flock(self, fd: int | None, mode: int) -> None:
        """flock, saying so after LOCK_NOTICE_S and giving up after TAMIS_LOCK_TIMEOUT."""
        timeout = lock_timeout()
        if fd is None:
            return
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        start = time.monotonic()
        told = False
        pause = 0.01
        while True:
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                waited = time.monotonic() - start
                if waited >= timeout:
                    raise StoreError(
                        f"gave up waiting {waited:.0f} s for the store lock: another tamis "
                        "process is writing to this store",
                        file=str(self.lock_path),
                        fix="wait for it to finish (or stop it), or raise TAMIS_LOCK_TIMEOUT "
                        f"(now {timeout:g} s)",
                    ) from None
                if not told and waited >= LOCK_NOTICE_S:
                    sys.stderr.write(
                        f"waiting for the store lock {self.lock_path}: another tamis process "
                        f"is writing (giving up after {timeout:g} s, TAMIS_LOCK_TIMEOUT)\n"
                    )
                    told = True

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the store's write lock without opening the catalog (to replace the file)."""
        fd = self._open_lock(write=True)
        try:
            self._flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    @contextmanager
    def connect(self, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection held under the store lock (exclusive to write, shared to read)."""
        if self._session is not None:
            yield self._session
            return
        missing = not self.path.exists()
        fd = self._open_lock(write=write or missing)
        writable = write or missing or os.access(self.lock_path, os.W_OK)
        try:
            needs_write = write or missing or (writable and bool(self._pending()))
            self._flock(fd, fcntl.LOCK_EX if needs_write else fcntl.LOCK_SH)
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
                self._flock(fd, fcntl.LOCK_EX)  # upgrade: set the broken file aside, rebuild
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

    def add_version(self, manifest: Mapping[str, Any]) -> None:
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
        self.set_refs([(ref, version_id)], when)

    def set_refs(self, refs: Iterable[tuple[str, str]], when: str) -> None:
        """Point refs at versions: one fsynced line in refs.log, then one catalog transaction
        (so a build's refs move together: all of them or, after a kill, none)."""
        pairs = list(refs)
        if not pairs:
            return
        self.log_refs(pairs, when)
        own = self._session is None  # in a session the caller holds the transaction
        with self.connect(write=True) as con:
            if own:
                con.execute("BEGIN")
            for ref, version_id in pairs:
                con.execute("INSERT OR REPLACE INTO refs VALUES (?, ?, ?)", [ref, version_id, when])
            if own:
                con.execute("COMMIT")

    def log_refs(self, pairs: list[tuple[str, str]], when: str) -> None:
        line = json.dumps({"at": when, "refs": dict(pairs)}, separators=(",", ":")) + "\n"
        self.ref_log.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.ref_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise self._no_space(exc) from None
            raise
        finally:
            os.close(fd)

    def logged_refs(self) -> dict[str, tuple[str, str]]:
        """The latest (version id, time) per ref in refs.log; a torn last line is skipped."""
        refs: dict[str, tuple[str, str]] = {}
        try:
            lines = self.ref_log.read_text().splitlines()
        except FileNotFoundError:
            return refs
        for line in lines:
            try:
                entry = json.loads(line)
                for ref, version_id in entry["refs"].items():
                    refs[str(ref)] = (str(version_id), str(entry.get("at")))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
        return refs

    def commit_build(self, refs: list[tuple[str, str]], run: Mapping[str, Any], when: str) -> None:
        """A build's end: its refs (refs.log first) and its run row in one transaction."""
        with self.session() as con:
            con.execute("BEGIN")  # one commit for all refs: each autocommit costs ~15 ms
            self.set_refs(refs, when)
            self.record_run(run)
            con.execute("COMMIT")

    def record_run(self, run: Mapping[str, Any]) -> None:
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

    def snapshot(self) -> tuple[dict[str, Any] | None, str | None]:
        """For `tamis verify`: the catalog's versions ({id: rows, content_hash}), refs
        ({ref: id}) and edges ([(parent, child)]) read as they are, with no rebuild or repair,
        or (None, why the file cannot be read)."""
        if not self.path.exists():
            return None, "the catalog file is missing"
        try:
            con = duckdb.connect(str(self.path), read_only=True)
        except duckdb.Error as exc:
            return None, f"the catalog cannot be opened ({str(exc)[:200]})"
        try:
            versions = {
                r[0]: {"rows": r[1], "content_hash": r[2]}
                for r in con.execute("SELECT id, rows, content_hash FROM versions").fetchall()
            }
            refs = dict(con.execute("SELECT ref, version_id FROM refs").fetchall())
            edges = con.execute("SELECT parent, child FROM edges").fetchall()
        except duckdb.Error as exc:
            return None, f"the catalog cannot be read ({str(exc)[:200]})"
        finally:
            con.close()
        return {"versions": versions, "refs": refs, "edges": edges}, None

    def source_files(self) -> list[str]:
        """Every source path whose hash is remembered (the files pipelines read)."""
        if not self.path.exists():
            return []
        return [r["path"] for r in self.query("SELECT path FROM source_files") if r["path"]]

    def source_versions(self) -> list[str]:
        """Ids of the versions that are source imports."""
        if not self.path.exists():
            return []
        return [r["id"] for r in self.query("SELECT id FROM versions WHERE step_type = 'source'")]

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
