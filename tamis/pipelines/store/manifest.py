"""The typed documents of a store: a version's manifest and a run's catalog row."""

from __future__ import annotations

from typing import Any, TypedDict

from tamis.pipelines.engines.parts import PartInfo


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
    other rows under the same id (`{"content_hash", "kept_in"}`). `parts` lists the version's
    Parquet parts in `data/`, in order; a version written by older code has none (its rows are
    one `data.parquet` whose sha256 is the content hash).
    """

    replaced: dict[str, Any]
    parts: list[PartInfo]


class RunRecord(TypedDict, total=False):
    """A row of the catalog's `runs` table (a build, a sweep, a training run)."""

    id: str
    kind: str
    name: str
    started_at: str
    finished_at: str
    status: str
    info: dict[str, Any]
