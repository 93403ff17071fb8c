"""Audit records: every `tamis audit` run leaves a trace in the store.

    <store>/audits/<record id>.json           # what was audited, under which policy, the decision
    <store>/audits/reports/<record id>.json   # the full audit (every figure, the gate)

A record names its inputs by version id (store refs) or by path and SHA-256 (files), holds the
policy file's path, SHA-256 and full text, the gate result and where the reports are, so that
"which audit passed the data we released, under which policy" has an answer:
`tamis show <version>` lists the audits that took the version as an input (`audits_for`).
Records are written atomically and never overwritten (each has a fresh id).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

AUDITS_DIR = "audits"


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def describe_input(prov: dict[str, Any]) -> dict[str, Any]:
    """An input as a record names it: version id (+ ref) for store versions, path + hash else."""
    if prov.get("version"):
        manifest = prov.get("manifest") or {}
        out: dict[str, Any] = {"version": prov["version"], "ref": prov.get("ref")}
        if manifest.get("content_hash"):
            out["content_hash"] = manifest["content_hash"]
        return out
    path = prov.get("path")
    return {"path": path, "sha256": file_sha256(path) if path else None}


def record_audit(
    store_root: str | Path,
    *,
    inputs: dict[str, dict[str, Any]],
    policy_path: str | Path,
    gate: dict[str, Any],
    payload: dict[str, Any],
    seed: int,
    html: str | Path | None = None,
) -> Path:
    """Write one audit record (and the full report beside it); return the record's path."""
    from tamis.pipelines.store import write_json_atomic

    root = Path(store_root) / AUDITS_DIR
    (root / "reports").mkdir(parents=True, exist_ok=True)
    created = datetime.now(timezone.utc)
    record_id = f"{created.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}"
    policy_bytes = Path(policy_path).read_bytes()
    report_path = root / "reports" / f"{record_id}.json"
    write_json_atomic(report_path, payload)
    record = {
        "id": record_id,
        "kind": "privacy_audit",
        "created_at": created.isoformat(timespec="milliseconds"),
        "passed": bool(gate["passed"]),
        "inputs": {role: describe_input(prov) for role, prov in inputs.items()},
        "policy": {
            "path": str(Path(policy_path).resolve()),
            "sha256": hashlib.sha256(policy_bytes).hexdigest(),
            "content": policy_bytes.decode("utf-8", errors="replace"),
        },
        "gate": {
            "passed": bool(gate["passed"]),
            "checks": gate["checks"],
            "failed": [c["check"] for c in gate["failed"]],
        },
        "seed": seed,
        "report": str(report_path.resolve()),
        "html": str(Path(html).resolve()) if html is not None else None,
    }
    path = root / f"{record_id}.json"
    write_json_atomic(path, record)
    return path


def audits_for(store_root: str | Path, version_id: str) -> list[dict[str, Any]]:
    """Summaries of the audit records that took `version_id` as an input, oldest first."""
    root = Path(store_root) / AUDITS_DIR
    if not root.is_dir():
        return []
    out = []
    for path in sorted(root.glob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a damaged record is reported by nothing here; it never hides the rest
        if not isinstance(rec, dict):
            continue
        roles = [
            role
            for role, inp in (rec.get("inputs") or {}).items()
            if isinstance(inp, dict) and inp.get("version") == version_id
        ]
        if not roles:
            continue
        policy = rec.get("policy") or {}
        out.append(
            {
                "id": rec.get("id"),
                "created_at": rec.get("created_at"),
                "passed": rec.get("passed"),
                "as": roles,
                "policy": policy.get("path"),
                "policy_sha256": policy.get("sha256"),
                "failed": (rec.get("gate") or {}).get("failed", []),
                "record": str(path),
                "report": rec.get("report"),
            }
        )
    out.sort(key=lambda r: (str(r["created_at"]), str(r["id"])))
    return out
