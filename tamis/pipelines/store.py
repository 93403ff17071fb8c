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
    damaged/                  version dirs found damaged, set aside (never deleted) and rebuilt

Crash safety: a version is written into `tmp/`, every file is fsynced, then the directory is
renamed into `versions/` in one atomic step, and only then is the catalog row written. A crash
before the rename leaves only litter in `tmp/` (cleared on the next write); a crash after the
rename but before the catalog row is healed by `reindex`, which the runner calls for any version
it finds on disk but not in the catalog.

Integrity: the manifest records the size, mtime and sha256 of every file of a version (`files`).
Reads and cache hits check the sizes, and hash a file whose mtime changed since it was written
(an in-place edit), so altered data fails with "version X is damaged: run `tamis verify`" rather
than being served; a cache hit sets a damaged version aside (into `damaged/`, never deleted) so
that it is rebuilt. TAMIS_VERIFY_READS=hash makes every read hash the data file (once per
process and file state). `tamis verify` (tamis/pipelines/verify.py) re-hashes everything.
Ids are 64 lowercase hex digits and refs are
names (letters, digits, `_ - .`, segments joined by `/`): nothing else resolves.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypedDict, cast

import duckdb
import polars as pl
import pyarrow.parquet as pq

from tamis import __version__
from tamis.errors import StoreError
from tamis.pipelines.catalog import SCHEMA, Catalog
from tamis.pipelines.hashing import hash_file

DEFAULT_STORE = ".tamis"
ID_RE = re.compile(r"[0-9a-f]{64}")
HEX_RE = re.compile(r"[0-9a-f]+")
REF_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*")
#: (st_dev, st_ino, st_size, st_mtime_ns) of a data file -> the sha256 it was found to have
_HASHED: dict[tuple[int, int, int, int], str] = {}


class FileRecord(TypedDict):
    """What a manifest records of one file of a version, to spot a change."""

    size: int
    mtime_ns: int
    sha256: str


class _ManifestFields(TypedDict):
    id: str
    name: str
    pipeline: str | None
    created_at: str
    parents: list[dict[str, str]]
    step: dict[str, Any]
    seed: int | None
    schema: list[dict[str, str]]
    rows: int
    content_hash: str
    cache_key: str | None
    run_id: str | None
    tamis_version: str
    report: dict[str, Any]
    tables: list[str]
    artifacts: list[str]
    files: dict[str, FileRecord]


class Manifest(_ManifestFields, total=False):
    """A version's `manifest.json`, as `Store.write_version` writes and `manifest_by_id` reads it.

    `parents` are `{"id", "role"}`; `step` holds name, type, canonical params, version, code
    (and output, deterministic for step outputs); `replaced` is there when a forced rebuild put
    other rows under the same id (`{"content_hash", "kept_in"}`).
    """

    replaced: dict[str, Any]


class RunRecord(TypedDict, total=False):
    """A row of the catalog's `runs` table (a build, a sweep, a training run)."""

    id: str
    kind: str
    name: str
    started_at: str
    finished_at: str
    status: str
    info: dict[str, Any]


def is_version_id(value: object) -> bool:
    return isinstance(value, str) and ID_RE.fullmatch(value) is not None


def check_version_id(value: object) -> str:
    """A version id is exactly 64 lowercase hex digits: never a path, never `../...`."""
    if not is_version_id(value):
        raise StoreError(
            f"{value!r} is not a version id (64 lowercase hex digits)",
            fix="pass a version id, an id prefix or a ref (see `tamis versions`)",
        )
    return str(value)


def check_ref_name(ref: str) -> str:
    """A ref is `<pipeline>/<step>[.<output>]`-like: no spaces, no `..`, nothing trimmed."""
    if not isinstance(ref, str) or REF_RE.fullmatch(ref) is None:
        raise StoreError(
            f"{ref!r} is not a valid ref name",
            fix="refs are names like <pipeline>/<step>: letters, digits, '_', '-', '.', "
            "segments joined by '/', no spaces",
        )
    return ref


def is_no_space(exc: BaseException) -> bool:
    """A full disk, from Python (ENOSPC) or wrapped by Polars/DuckDB ("os error 28")."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    text = str(exc)
    return "No space left on device" in text or "os error 28" in text


def _writer_gone(name: str) -> bool:
    """True if `name` is a version being written (`<id>.<pid>.<nonce>`) whose process is gone."""
    parts = name.split(".")
    if len(parts) != 3 or not is_version_id(parts[0]) or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


def _stat_key(path: Path) -> tuple[int, int, int, int]:
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _hash_memo(path: Path) -> str:
    """Content hash of a file, computed once per process and file state (inode, size, mtime)."""
    key = _stat_key(path)
    sha = _HASHED.get(key)
    if sha is None:
        sha = hash_file(path)
        _HASHED[key] = sha
    return sha


def _verify_reads() -> bool:
    """TAMIS_VERIFY_READS=hash: every read hashes the data file (once per process and state)."""
    return os.environ.get("TAMIS_VERIFY_READS", "").lower() == "hash"


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
        self.damaged_dir = self.root / "damaged"
        #: versions a forced rebuild replaced with other rows under the same id (kept, not deleted)
        self.replaced_dir = self.root / "replaced"
        self.catalog = Catalog(self.root)
        self.catalog.rebuild = self._fill_catalog
        self.catalog.has_data = self._has_data
        self._housekept = False

    # ------------------------------------------------------------------ paths and lookups
    def version_dir(self, version_id: str) -> Path:
        return self.versions_dir / check_version_id(version_id)

    def data_path(self, version_id: str) -> Path:
        return self.version_dir(version_id) / "data.parquet"

    def has_version(self, version_id: str) -> bool:
        return (
            is_version_id(version_id) and (self.version_dir(version_id) / "manifest.json").exists()
        )

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

    def resolve(self, ref: str) -> str:
        """An id, an unambiguous id prefix, or a ref (`<pipeline>/<step>`) -> a version id.

        Nothing is trimmed: a reference with spaces is an error, not a near match. Only
        64-hex-digit ids of versions in this store and valid ref names resolve.
        """
        if not isinstance(ref, str) or not ref:
            raise StoreError("empty version reference", fix="pass an id, id prefix or ref")
        if ref != ref.strip() or any(c.isspace() or not c.isprintable() for c in ref):
            raise StoreError(
                f"version reference {ref!r} contains spaces or control characters",
                fix="refs and ids never contain spaces; see `tamis versions`",
            )
        if not self.catalog.path.exists() and not self._has_data():
            raise StoreError(
                f"no store at {self.root}",
                fix="build a pipeline first (`tamis build PIPELINE.yaml`) or pass --store DIR",
            )
        lowered = ref.lower()
        if ID_RE.fullmatch(lowered):
            if self.has_version(lowered):
                return lowered
        elif HEX_RE.fullmatch(lowered) and len(lowered) >= 4:
            hits = self.catalog.query(
                "SELECT id FROM versions WHERE starts_with(id, ?) ORDER BY id", [lowered]
            )
            if len(hits) == 1:
                return check_version_id(hits[0]["id"])
            if len(hits) > 1:
                raise StoreError(
                    f"id prefix '{ref}' is ambiguous ({len(hits)} versions)",
                    fix="give more characters of the id",
                )
        if REF_RE.fullmatch(ref) is None:
            raise StoreError(
                f"'{ref}' is neither a version id nor a valid ref name",
                fix="pass a 64-hex-digit id, an id prefix (4+ hex digits) or a ref "
                "<pipeline>/<step> (see `tamis versions`)",
            )
        rows = self.catalog.query("SELECT version_id FROM refs WHERE ref = ?", [ref])
        if rows:
            version_id = rows[0]["version_id"]
            if not is_version_id(version_id):
                raise StoreError(
                    f"ref '{ref}' points to {version_id!r}, which is not a version id",
                    fix="the catalog was altered: run `tamis verify`",
                )
            return str(version_id)
        near = self.catalog.query(
            "SELECT ref FROM refs WHERE contains(ref, ?) ORDER BY ref LIMIT 8",
            [ref.split("/")[-1]],
        )
        hint = ", ".join(r["ref"] for r in near) if near else "see `tamis versions`"
        raise StoreError(f"no version or ref named '{ref}'", fix=f"known refs: {hint}")

    # ------------------------------------------------------------------ integrity
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
        problems: list[str] = []
        files: dict[str, Any] = manifest.get("files") or {
            "data.parquet": {"sha256": manifest.get("content_hash")}
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
            if sha and (full or touched) and _hash_memo(path) != sha:
                problems.append(f"{rel} does not match its content hash")
        if full and only is None and not problems:
            data = vdir / "data.parquet"
            try:
                rows = pq.read_metadata(data).num_rows
                schema = schema_of(pl.read_parquet_schema(data))
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt | SystemExit | MemoryError):
                    raise
                return [f"data.parquet cannot be read ({exc})"]
            if rows != manifest.get("rows"):
                problems.append(
                    f"data.parquet has {rows:,} rows, the manifest says {manifest.get('rows')}"
                )
            if schema != manifest.get("schema"):
                problems.append("data.parquet's schema differs from the manifest's")
        return problems

    def check_readable(self, version_id: str) -> None:
        """Raise a clear StoreError if a version's data cannot be trusted: its size, and its
        content hash when the file was modified since it was written (or always, once per
        process and file state, with TAMIS_VERIFY_READS=hash)."""
        problems = self.check_version(version_id, only=["data.parquet"], full=_verify_reads())
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
        _fsync_path(self.versions_dir)
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
            _HASHED[_stat_key(data_path)] = content_hash  # rename keeps inode, size and mtime
            files: dict[str, FileRecord] = {}
            for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
                rel = path.relative_to(tmp).as_posix()
                st = path.stat()  # a rename keeps size and mtime: recorded to spot changes
                files[rel] = {
                    "size": st.st_size,
                    "mtime_ns": st.st_mtime_ns,
                    "sha256": content_hash if rel == "data.parquet" else _hash_memo(path),
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
            _fsync_tree(tmp)
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
                    _fsync_path(tmp / "manifest.json")
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
            _fsync_path(self.versions_dir)
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

    def set_ref(self, ref: str, version_id: str) -> None:
        self.catalog.set_ref(check_ref_name(ref), check_version_id(version_id), now())

    def _manifests_on_disk(self) -> list[dict[str, Any]]:
        """Manifests of the version dirs whose manifest reads and names its own dir."""
        found: list[dict[str, Any]] = []
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
                found.append(manifest)
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
        is gone (this host's pids), else only when older than `older_than_s` (it may be live).
        Only ever touches the store's own tmp/.
        """
        if not self.tmp_dir.exists():
            return 0
        cutoff = datetime.now().timestamp() - older_than_s
        removed = 0
        for entry in self.tmp_dir.iterdir():
            try:
                if entry.lstat().st_mtime >= cutoff and not _writer_gone(entry.name):
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

    # ------------------------------------------------------------------ queries
    def list_versions(self, pipeline: str | None = None) -> list[dict[str, Any]]:
        if not self.catalog.path.exists() and not self._has_data():
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
        stale = self.stale_refs()
        for row in rows:
            row["refs"] = list(row["refs"] or [])
            row["stale_refs"] = [r for r in row["refs"] if r in stale]
        return rows

    def stale_refs(self) -> dict[str, str]:
        """Refs whose version was built from an input that its ref no longer points to (a
        build that failed or was cut short after updating upstream refs): {ref: why}."""
        rows = self.catalog.query(
            """
            SELECT DISTINCT r.ref, e.role, pv.name AS input_ref
            FROM refs r
            JOIN edges e ON e.child = r.version_id
            JOIN versions pv ON pv.id = e.parent
            JOIN refs pr ON pr.ref = pv.name
            WHERE pr.version_id <> e.parent
            ORDER BY r.ref, e.role
            """
        )
        stale: dict[str, str] = {}
        for row in rows:
            stale.setdefault(
                row["ref"], f"built from an older {row['input_ref']} (its {row['role']} input)"
            )
        return stale

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

    def record_run(self, run: RunRecord | dict[str, Any]) -> None:
        self.catalog.record_run(run)

    def index_found(
        self,
        manifests: list[Manifest],
        *,
        refs: list[tuple[str, str]] | None = None,
        run: RunRecord | None = None,
    ) -> None:
        """Index versions found on disk (cache hits) that the catalog lacks (a crash after the
        rename); with `run` (a build's end) point `refs` and record the run in one transaction,
        so a build's refs move together. One catalog connection for all of it."""
        with self.catalog.session():
            missing = set(self.catalog.missing_versions([m["id"] for m in manifests]))
            for manifest in manifests:
                if manifest["id"] in missing:
                    self.catalog.add_version(manifest)
            if run is not None:
                self.catalog.commit_build(refs or [], run, now())

    def sweep_runs(self, name: str, sweep_id: str) -> list[dict[str, Any]]:
        """Finished sweeps named `name`, or whose id is `sweep-<sweep_id>` or starts so (4+
        characters), newest first: `id` and `info` (with the result's `path`)."""
        if not self.catalog.path.exists() and not self.catalog.pending_dir.exists():
            return []
        rows = self.catalog.query(
            "SELECT id, info_json FROM runs WHERE kind = 'sweep' AND status = 'ok' AND "
            "(name = ? OR id = ? OR id LIKE ?) ORDER BY finished_at DESC",
            [name, f"sweep-{sweep_id}", f"sweep-{sweep_id}%" if len(sweep_id) >= 4 else "\x00"],
        )
        return [{"id": r["id"], "info": json.loads(r["info_json"] or "{}")} for r in rows]


def _rows(con: Any, sql: str) -> list[dict[str, Any]]:
    rel = con.execute(sql)
    cols = [d[0] for d in rel.description or []]
    return [dict(zip(cols, row, strict=True)) for row in rel.fetchall()]
