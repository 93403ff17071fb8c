"""Refs and catalog queries of a store: resolve a reference, move refs, list versions, lineage,
runs. Every catalog write of a build goes through here (`index_found`)."""

from __future__ import annotations

import json
from typing import Any

from tamis.errors import StoreError
from tamis.pipelines.store.manifest import Manifest, RunRecord
from tamis.pipelines.store.names import (
    HEX_RE,
    ID_RE,
    REF_RE,
    check_ref_name,
    check_version_id,
    is_version_id,
    now,
)
from tamis.pipelines.store.repair import RepairableStore


class CatalogViews(RepairableStore):
    """What the catalog knows: refs, versions, lineage and runs."""

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

    def set_ref(self, ref: str, version_id: str) -> None:
        self.catalog.set_ref(check_ref_name(ref), check_version_id(version_id), now())

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

    def queue_runs(self, runs: list[dict[str, Any]]) -> None:
        """Run rows queued for the catalog in one small file (a sweep's cells; see
        `Catalog.queue_runs`): no DuckDB connection opened now."""
        self.catalog.queue_runs(runs)

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
