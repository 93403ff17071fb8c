"""What the catalog holds and how it is written: version rows and edges, refs (logged first in
`refs.log`), runs, remembered source-file hashes, and a raw snapshot for `tamis verify`."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

import duckdb

from tamis.pipelines.catalog.connection import CatalogConnection


class Catalog(CatalogConnection):
    """The catalog's reads and writes, each under the store lock (see `CatalogConnection`)."""

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
