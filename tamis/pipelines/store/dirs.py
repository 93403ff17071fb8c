"""Version directories: paths, integrity checks against the manifest, damaged dirs set aside.

The manifest records the size, mtime and sha256 of every file of a version (`files`). Reads and
cache hits check the sizes, and hash a file whose mtime changed since it was written (an in-place
edit), so altered data fails with "version X is damaged: run `tamis verify`" rather than being
served. TAMIS_VERIFY_READS=hash makes every read hash the data file (once per process and file
state).
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

from tamis.errors import StoreError
from tamis.pipelines.catalog import Catalog
from tamis.pipelines.store.data import (
    DATA_DIR,
    OLD_DATA_FILE,
    check_data,
    check_parts_listing,
    data_rels,
)
from tamis.pipelines.store.files import fsync_path, hash_memo, verify_reads
from tamis.pipelines.store.manifest import Manifest
from tamis.pipelines.store.names import check_version_id, default_store_path, is_version_id


class VersionDirs:
    """The version directories of a store: where a version lives, whether it can be trusted,
    and setting a damaged one aside (into `damaged/`, never deleted)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_store_path()
        self.versions_dir = self.root / "versions"
        self.tmp_dir = self.root / "tmp"
        self.runs_dir = self.root / "runs"
        self.damaged_dir = self.root / "damaged"
        #: versions a forced rebuild replaced with other rows under the same id (kept, not deleted)
        self.replaced_dir = self.root / "replaced"
        self.catalog = Catalog(self.root)

    def version_dir(self, version_id: str) -> Path:
        return self.versions_dir / check_version_id(version_id)

    def data_path(self, version_id: str) -> Path:
        """Where a version's rows are: its `data/` directory of parts, or the single
        `data.parquet` of a version written by older code (both read with `pl.scan_parquet`)."""
        vdir = self.version_dir(version_id)
        return vdir / DATA_DIR if (vdir / DATA_DIR).is_dir() else vdir / OLD_DATA_FILE

    def data_files(self, version_id: str) -> list[Path]:
        """A version's data files in order: its parts, or its one `data.parquet`."""
        vdir = self.version_dir(version_id)
        manifest = self.manifest_by_id(version_id)
        listing = check_parts_listing(manifest)
        if listing:
            raise self._damaged(version_id, listing[0])
        return [vdir / rel for rel in data_rels(manifest)]

    def has_version(self, version_id: str) -> bool:
        return (
            is_version_id(version_id) and (self.version_dir(version_id) / "manifest.json").exists()
        )

    def _damaged(self, version_id: str, why: str) -> StoreError:
        return StoreError(
            f"version {version_id[:12]} is damaged: {why}",
            file=str(self.version_dir(version_id)),
            fix="run `tamis verify` to list damaged versions; `tamis build --force` on the "
            "pipeline that made it rebuilds it",
        )

    def check_version(
        self, version_id: str, *, full: bool = False, only: list[str] | None = None
    ) -> list[str]:
        """What is wrong with a version dir ([] if nothing): manifest, recorded file sizes, and
        with `full` the content hashes, Parquet row count and schema against the manifest."""
        vdir = self.version_dir(version_id)
        if not vdir.is_dir():
            return ["the version directory is missing"]
        try:
            manifest = self._load_manifest(version_id)
        except FileNotFoundError:
            return ["manifest.json is missing"]
        except (OSError, ValueError) as exc:
            return [f"manifest.json cannot be read ({exc})"]
        if not isinstance(manifest, dict) or manifest.get("id") != version_id:
            return ["manifest.json belongs to another version"]
        listing = check_parts_listing(manifest)  # cheap: no file read
        if listing and not full:
            return listing
        problems: list[str] = []
        files: dict[str, Any] = manifest.get("files") or {
            OLD_DATA_FILE: {"sha256": manifest.get("content_hash")}
        }
        for rel, rec in files.items():
            if only is not None and rel not in only:
                continue
            path = vdir / rel
            if not isinstance(rec, dict) or ".." in Path(rel).parts or not path.is_file():
                problems.append(f"{rel} is missing")
                continue
            st = path.stat()
            size = rec.get("size")
            if size is not None and st.st_size != size:
                problems.append(f"{rel} has {st.st_size:,} bytes, the manifest says {size:,}")
                continue
            # A file changed in place gets a new mtime: then (or with `full`) hash it.
            touched = rec.get("mtime_ns") is not None and st.st_mtime_ns != rec["mtime_ns"]
            sha = rec.get("sha256")
            if sha and (full or touched) and hash_memo(path) != sha:
                problems.append(f"{rel} does not match its content hash")
        if full and only is None and not problems:
            problems += check_data(vdir, manifest, manifest.get("schema") or [])
        return listing + problems

    def check_readable(self, version_id: str) -> None:
        """Raise a clear StoreError if a version's data cannot be trusted: its size, and its
        content hash when the file was modified since it was written (or always, once per
        process and file state, with TAMIS_VERIFY_READS=hash). A version's data is every part."""
        manifest = self.manifest_by_id(version_id)
        problems = check_parts_listing(manifest) or self.check_version(
            version_id, only=data_rels(manifest), full=verify_reads()
        )
        if problems:
            raise self._damaged(version_id, problems[0])

    def set_aside(self, version_id: str, into: Path | None = None) -> Path | None:
        """Move a version dir into `damaged/` (or `into`), never deleted; None if already gone."""
        folder = into or self.damaged_dir
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        target = folder / f"{version_id}.{stamp}.{uuid.uuid4().hex[:6]}"
        try:
            os.rename(self.version_dir(version_id), target)
        except FileNotFoundError:
            return None
        fsync_path(self.versions_dir)
        return target

    def set_aside_damaged(self, version_ids: Any) -> dict[str, str]:
        """For a cache hit: set aside every version dir that fails the cheap checks (manifest,
        file sizes) so it is rebuilt; returns {id: what was wrong}."""
        found: dict[str, str] = {}
        for version_id in version_ids:
            if not self.version_dir(version_id).exists():
                continue
            problems = self.check_version(version_id)
            if problems and self.set_aside(version_id) is not None:
                found[version_id] = problems[0]
        return found

    def _load_manifest(self, version_id: str) -> dict[str, Any]:
        with open(self.version_dir(version_id) / "manifest.json") as fh:
            manifest: dict[str, Any] = json.load(fh)
        return manifest

    def manifest_by_id(self, version_id: str) -> Manifest:
        """A version's manifest; a missing, unreadable or foreign one is a clear StoreError."""
        try:
            manifest = self._load_manifest(version_id)
        except FileNotFoundError:
            if self.version_dir(version_id).is_dir():
                raise self._damaged(version_id, "manifest.json is missing") from None
            raise StoreError(
                f"no version {version_id[:12]} in {self.root}",
                fix="see `tamis versions`; `tamis verify` checks the catalog against the store",
            ) from None
        except (OSError, ValueError) as exc:
            raise self._damaged(version_id, f"manifest.json cannot be read ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("id") != version_id:
            raise self._damaged(version_id, "manifest.json belongs to another version")
        return cast(Manifest, manifest)
