"""`tamis verify`: an fsck for the store. What it serves must be what it wrote.

For every version directory (or the versions named): the manifest reads and names its own
directory; every file the manifest records exists with its recorded size and sha256 (every
part of the data, report tables, artifacts); each part's Parquet row count and schema equal the
manifest's, the content hash is the tree over the parts, no stray file sits in `data/`
(versions written by older code: one `data.parquet`, checked the same way). Then the catalog against the directories: every catalog row has a directory and
agrees with its manifest (rows, content hash), every directory is indexed, every ref names a
version that exists, every lineage edge's parent exists. Anything else in `versions/` is
reported. `--repair` sets damaged version dirs aside (into `damaged/`, never deleted) and
rebuilds the catalog from the version dirs, `refs.log` and what is readable of the old catalog.
"""

from __future__ import annotations

import time
from typing import Any

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


def _version_ids(store: Store, refs: list[str] | None, problems: list[dict[str, Any]]) -> list[str]:
    """The versions to check: those `refs` name, or every version dir (stray entries noted)."""
    if refs:
        return sorted({store.resolve(r) for r in refs})
    ids: list[str] = []
    if store.versions_dir.is_dir():
        for entry in sorted(store.versions_dir.iterdir()):
            if is_version_id(entry.name):
                ids.append(entry.name)
            else:
                problems.append(
                    _problem("stray", f"{entry} is not a version directory (name is no id)")
                )
    return ids


def _check_dirs(
    store: Store, ids: list[str], problems: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Full checks of every version dir; returns the manifests that could be read."""
    manifests: dict[str, dict[str, Any]] = {}
    for vid in ids:
        for p in store.check_version(vid, full=True):
            problems.append(_problem("damaged", p, version=vid))
        try:
            manifest = store._load_manifest(vid)
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict):
            manifests[vid] = manifest
    return manifests


def _check_rows(
    store: Store,
    ids: list[str],
    manifests: dict[str, dict[str, Any]],
    rows: dict[str, dict[str, Any]],
    whole: bool,
) -> list[dict[str, Any]]:
    """Catalog rows against version dirs: every dir indexed and agreeing with its manifest,
    and (for a whole-store check) every row with a dir."""
    problems: list[dict[str, Any]] = []
    for vid in ids:
        if vid not in rows:
            problems.append(_problem("not indexed", "no catalog row", version=vid))
        elif vid in manifests:
            m = manifests[vid]
            row = rows[vid]
            if row["rows"] != m.get("rows") or row["content_hash"] != m.get("content_hash"):
                problems.append(
                    _problem("catalog", "catalog row differs from the manifest", version=vid)
                )
    if whole:
        for vid in sorted(rows):
            if not _exists(store, vid):
                problems.append(
                    _problem("catalog", "catalog row without a version directory", version=vid)
                )
    return problems


def _exists(store: Store, vid: Any) -> bool:
    return is_version_id(vid) and (store.versions_dir / vid).is_dir()


def _check_links(
    store: Store, catalog: dict[str, Any], checked: set[str] | None
) -> list[dict[str, Any]]:
    """Refs and lineage edges name versions that exist (only those of `checked` when given)."""
    problems: list[dict[str, Any]] = []
    for ref, vid in sorted(catalog["refs"].items()):
        if checked is not None and vid not in checked:
            continue
        if REF_RE.fullmatch(ref) is None:
            problems.append(_problem("ref", "not a valid ref name", ref=ref, version=vid))
        elif not _exists(store, vid):
            problems.append(_problem("ref", "points to a missing version", ref=ref, version=vid))
    for parent, child in catalog["edges"]:
        if (checked is None or child in checked) and not _exists(store, parent):
            problems.append(_problem("lineage", f"parent {parent} is missing", version=child))
    return problems


def verify_store(
    store: Store, refs: list[str] | None = None, *, repair: bool = False
) -> dict[str, Any]:
    """Check the store (or only the versions `refs` name); with `repair`, fix what can be."""
    started = time.perf_counter()
    if not store.root.is_dir():
        raise StoreError(f"no store at {store.root}", fix="pass --store DIR (or set TAMIS_STORE)")
    problems: list[dict[str, Any]] = []
    ids = _version_ids(store, refs, problems)
    manifests = _check_dirs(store, ids, problems)
    catalog, why = store.catalog.snapshot()
    if catalog is None:
        if ids or store.catalog.ref_log.exists():
            problems.append(_problem("catalog", why or "the catalog cannot be read"))
    else:
        problems += _check_rows(store, ids, manifests, catalog["versions"], whole=not refs)
        problems += _check_links(store, catalog, set(ids) if refs else None)
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
