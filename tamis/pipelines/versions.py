"""What `tamis show` tells about a version: its manifest, the privacy audits that took it as an
input (recorded by `tamis audit` under `<store>/audits/`), and optionally its first rows."""

from __future__ import annotations

from typing import Any


def version_details(store: Any, ref: str, *, rows: int = 0) -> dict[str, Any]:
    """The manifest of `ref` (an id, id prefix or ref) plus `audits` when the store has any and
    `head` (the first `rows` rows as dicts) when `rows` > 0."""
    manifest = store.manifest(ref)
    details: dict[str, Any] = dict(manifest)
    if (store.root / "audits").is_dir():
        from tamis.pipelines.audit_records import audits_for

        details["audits"] = audits_for(store.root, manifest["id"])
    if rows:
        details["head"] = store.head(manifest["id"], rows).to_dicts()
    return details
