"""Healing a store: index versions a crash left unindexed, clear writers' litter in `tmp/`,
rebuild a lost or broken catalog from the version dirs and `refs.log` (`tamis verify --repair`).

A version is written into `tmp/`, fsynced, renamed into `versions/` and only then indexed. A
crash before the rename leaves litter in `tmp/`: cleared by `housekeeping` before the next write
of any Store (at once when its writer process is gone, else after 6 hours); a crash after the
rename is healed by `reindex`, which `housekeeping` also runs.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import datetime
from typing import Any, cast

import duckdb

from tamis.pipelines.catalog import SCHEMA, Catalog
from tamis.pipelines.store.dirs import VersionDirs
from tamis.pipelines.store.files import writer_gone
from tamis.pipelines.store.manifest import Manifest
from tamis.pipelines.store.names import REF_RE, is_version_id


class RepairableStore(VersionDirs):
    """Version dirs plus the means to rebuild the catalog from them."""

    _housekept = False

    def _manifests_on_disk(self) -> list[Manifest]:
        """Manifests of the version dirs whose manifest reads and names its own dir."""
        found: list[Manifest] = []
        if not self.versions_dir.is_dir():
            return found
        for entry in sorted(self.versions_dir.iterdir()):
            if not is_version_id(entry.name):
                continue
            try:
                manifest = self._load_manifest(entry.name)
            except (OSError, ValueError):
                continue
            if isinstance(manifest, dict) and manifest.get("id") == entry.name:
                found.append(cast(Manifest, manifest))
        return found

    def reindex(self) -> int:
        """Rebuild catalog rows from manifests on disk; returns how many rows were added."""
        added = 0
        if not self.versions_dir.exists():
            return 0
        known = {r["id"] for r in self.catalog.query("SELECT id FROM versions")}
        for manifest in self._manifests_on_disk():
            if manifest["id"] not in known:
                self.catalog.add_version(manifest)
                added += 1
        return added

    def housekeeping(self) -> None:
        """Once per Store object, before its first write: clear old tmp/ litter and index the
        versions a crashed writer renamed into place but never indexed."""
        if self._housekept:
            return
        self._housekept = True
        self.clean_tmp()
        self.reindex()

    def clean_tmp(self, older_than_s: float = 6 * 3600.0) -> int:
        """Remove litter that crashed writers left in tmp/; returns how many entries went.

        A version being written is `tmp/<id>.<pid>.<nonce>`: removed at once when that process
        is gone (this host's pids), else only when older than `older_than_s` (it may be live);
        so is an engine's parts and spill dir (`<prefix>.<pid>.<nonce>`, `engine_tmp`). This
        process's own entries are kept. Only ever touches the store's own tmp/.
        """
        if not self.tmp_dir.exists():
            return 0
        cutoff = datetime.now().timestamp() - older_than_s
        removed = 0
        mine = f".{os.getpid()}."
        for entry in self.tmp_dir.iterdir():
            try:
                if mine in entry.name:  # this process's own writers and engines: live
                    continue
                if entry.lstat().st_mtime >= cutoff and not writer_gone(entry.name):
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed += 1
            except OSError:
                continue
        return removed

    # ------------------------------------------------------------------ catalog rebuild
    def _has_data(self) -> bool:
        try:
            return any(self.versions_dir.iterdir()) or self.catalog.ref_log.exists()
        except FileNotFoundError:
            return False

    def _fill_catalog(self, con: Any) -> None:
        """Fill a new catalog from the version dirs and refs.log (the catalog's rebuild hook)."""
        manifests = self._manifests_on_disk()
        for manifest in manifests:
            self.catalog.add_version(manifest)
        ids = {m["id"] for m in manifests}
        refs = [
            (ref, vid, at)
            for ref, (vid, at) in sorted(self.catalog.logged_refs().items())
            if vid in ids and REF_RE.fullmatch(ref)
        ]
        con.execute("BEGIN")
        for ref, vid, at in refs:
            con.execute("INSERT OR REPLACE INTO refs VALUES (?, ?, ?)", [ref, vid, at])
        con.execute("COMMIT")
        sys.stderr.write(
            f"note: catalog of {self.root} rebuilt from {len(manifests)} version dirs and "
            f"{len(refs)} refs in refs.log\n"
        )

    def rebuild_catalog(self) -> dict[str, Any]:
        """`tamis verify --repair`: set damaged version dirs aside, move the catalog aside (kept
        in damaged/) and build a new one from the version dirs, refs.log, and the old catalog's
        refs and runs where it can still be read. Returns what was done."""
        set_aside = {}
        if self.versions_dir.is_dir():
            for entry in sorted(self.versions_dir.iterdir()):
                if not is_version_id(entry.name):
                    continue
                problems = self.check_version(entry.name, full=True)
                if problems:
                    target = self.set_aside(entry.name)
                    if target is not None:
                        set_aside[entry.name] = {"problem": problems[0], "moved_to": str(target)}
        old_refs: list[dict[str, Any]] = []
        old_runs: list[dict[str, Any]] = []
        old_catalog = None
        logged = self.catalog.logged_refs()
        with self.catalog.exclusive():  # no writer is mid-transaction meanwhile
            if self.catalog.path.exists():
                try:
                    con = duckdb.connect(str(self.catalog.path), read_only=True)
                    try:
                        old_refs = _rows(con, "SELECT ref, version_id, updated_at FROM refs")
                        old_runs = _rows(con, "SELECT * FROM runs")
                    finally:
                        con.close()
                except duckdb.Error:
                    pass
                old_catalog = str(self.catalog.set_aside_file())
            con = duckdb.connect(str(self.catalog.path))
            self.catalog._session = con
            try:
                con.execute(SCHEMA)
                self._fill_catalog(con)
                ids = {r["id"] for r in _rows(con, "SELECT id FROM versions")}
                refs = {r["ref"] for r in _rows(con, "SELECT ref FROM refs")}
                con.execute("BEGIN")
                kept = 0
                for row in old_refs:
                    ref, vid = row["ref"], row["version_id"]
                    if ref not in refs and ref not in logged and vid in ids:
                        con.execute(
                            "INSERT INTO refs VALUES (?, ?, ?)", [ref, vid, row["updated_at"]]
                        )
                        kept += 1
                con.execute("COMMIT")
                Catalog._insert_runs(
                    con,
                    [{**r, "info": json.loads(r.pop("info_json") or "{}")} for r in old_runs],
                )
                n_refs = len(_rows(con, "SELECT ref FROM refs"))
            finally:
                self.catalog._session = None
                con.close()
        return {
            "versions": len(ids),
            "refs": n_refs,
            "refs_from_old_catalog": kept,
            "set_aside": set_aside,
            "old_catalog": old_catalog,
        }


def _rows(con: Any, sql: str) -> list[dict[str, Any]]:
    rel = con.execute(sql)
    cols = [d[0] for d in rel.description or []]
    return [dict(zip(cols, row, strict=True)) for row in rel.fetchall()]
