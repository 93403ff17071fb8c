"""`tamis verify`: an fsck for the store. What it serves must be what it wrote.

For every version directory (or the versions named): the manifest reads and names its own
directory; every file the manifest records exists with its recorded size and sha256 (the data
file's content hash, report tables, artifacts); the Parquet row count and schema equal the
manifest's. Then the catalog against the directories: every catalog row has a directory and
agrees with its manifest (rows, content hash), every directory is indexed, every ref names a
version that exists, every lineage edge's parent exists. Anything else in `versions/` is
reported. `--repair` sets damaged version dirs aside (into `damaged/`, never deleted) and
rebuilds the catalog from the version dirs, `refs.log` and what is readable of the old catalog.
"""

from __future__ import annotations

import time
from typing import Any

import duckdb

from tamis.errors import StoreError
from tamis.pipelines.store import REF_RE, Store, is_version_id


def _problem(
    kind: str, detail: str, version: str | None = None, ref: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": kind, "detail": detail}
    if version is not None:
        out["version"] = version
    if ref is not None:
        out["ref"] = ref
    return out


def _catalog_rows(store: Store) -> tuple[dict[str, Any] | None, str | None]:
    """(versions, refs, edges) from the catalog, or (None, why it cannot be read)."""
    if not store.catalog.path.exists():
        return None, "the catalog file is missing"
    try:
        con = duckdb.connect(str(store.catalog.path), read_only=True)
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


def verify_store(
    store: Store, refs: list[str] | None = None, *, repair: bool = False
) -> dict[str, Any]:
    """Check the store (or only the versions `refs` name); with `repair`, fix what can be."""
    started = time.perf_counter()
    if not store.root.is_dir():
        raise StoreError(f"no store at {store.root}", fix="pass --store DIR (or set TAMIS_STORE)")
    problems: list[dict[str, Any]] = []
    if refs:
        ids = sorted({store.resolve(r) for r in refs})
    else:
        ids = []
        if store.versions_dir.is_dir():
            for entry in sorted(store.versions_dir.iterdir()):
                if is_version_id(entry.name):
                    ids.append(entry.name)
                else:
                    problems.append(
                        _problem("stray", f"{entry} is not a version directory (name is no id)")
                    )
    manifests: dict[str, dict[str, Any]] = {}
    for vid in ids:
        found = store.check_version(vid, full=True)
        for p in found:
            problems.append(_problem("damaged", p, version=vid))
        try:
            manifest = store._load_manifest(vid)
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict):
            manifests[vid] = manifest
    catalog, why = _catalog_rows(store)
    if catalog is None:
        if ids or store.catalog.ref_log.exists():
            problems.append(_problem("catalog", why or "the catalog cannot be read"))
    else:
        rows = catalog["versions"]
        for vid in ids:
            if vid not in rows:
                problems.append(_problem("not indexed", "no catalog row", version=vid))
            elif vid in manifests:
                m = manifests[vid]
                if rows[vid]["rows"] != m.get("rows") or rows[vid]["content_hash"] != m.get(
                    "content_hash"
                ):
                    problems.append(
                        _problem("catalog", "catalog row differs from the manifest", version=vid)
                    )
        checked = set(ids)
        if not refs:
            for vid in sorted(rows):
                if not is_version_id(vid) or not (store.versions_dir / vid).is_dir():
                    problems.append(
                        _problem("catalog", "catalog row without a version directory", version=vid)
                    )
        for ref, vid in sorted(catalog["refs"].items()):
            if refs and vid not in checked:
                continue
            if REF_RE.fullmatch(ref) is None:
                problems.append(_problem("ref", "not a valid ref name", ref=ref, version=vid))
            elif not is_version_id(vid) or not (store.versions_dir / vid).is_dir():
                problems.append(
                    _problem("ref", "points to a missing version", ref=ref, version=vid)
                )
        for parent, child in catalog["edges"]:
            if (not refs or child in checked) and (
                not is_version_id(parent) or not (store.versions_dir / parent).is_dir()
            ):
                problems.append(_problem("lineage", f"parent {parent} is missing", version=child))
    tmp_entries = len(list(store.tmp_dir.iterdir())) if store.tmp_dir.is_dir() else 0
    result: dict[str, Any] = {
        "store": str(store.root),
        "versions_checked": len(ids),
        "ok": not problems,
        "problems": problems,
        "tmp_entries": tmp_entries,
    }
    if repair:
        result["repair"] = store.rebuild_catalog()
        after = verify_store(store, refs)
        result["after_repair"] = {"ok": after["ok"], "problems": after["problems"]}
        result["ok"] = after["ok"]
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result
