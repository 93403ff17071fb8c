"""Remember which data versions a sweep's pipeline produced, so a rerun need not re-check them.

Re-checking is a no-op build per seed: cheap per step, but it opens the DuckDB catalog and
rewrites refs, ~60 ms a seed, which is more than the cells of a small sweep cost in total. The
outcome of a build is a function of the pipeline spec, the seed, the step code versions and the
source files, so it is cached under a key of exactly those (sources by path, size and mtime, as
the catalog's source-hash cache does). A hit is used only if every version it names is still in
the store; pipelines with `@REF` inputs (refs move) are never cached.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tamis.pipelines.hashing import hash_json
from tamis.pipelines.store import Store, write_json_atomic

#: bump when the cached payload changes shape
FORMAT = 1


def _source_stats(pspec: Any) -> list[Any] | None:
    stats: list[Any] = []
    for name in sorted(pspec.sources):
        path = pspec.source_path(name)
        if not path.exists():
            return None  # the build will raise the proper error
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            st = f.stat()
            stats.append([name, str(f), st.st_size, st.st_mtime_ns])
    return stats


def plan_key(pspec: Any, seed: int, targets: list[str]) -> str | None:
    """The cache key of one seed's build, or None when it must not be cached."""
    from tamis.pipelines.sources import reader_version

    codes: dict[str, str] = {"<source reader>": reader_version()}
    for name, planned in pspec.plan().items():
        if any(ref.kind == "store" for ref in planned.refs()):
            return None
        codes[name] = planned.step_type.code_version()
    sources = _source_stats(pspec)
    if sources is None:
        return None
    return hash_json(
        {
            "format": FORMAT,
            "pipeline": pspec.model_dump(mode="json", exclude={"file", "base_dir"}),
            "seed": seed,
            "targets": sorted(targets),
            "codes": codes,
            "sources": sources,
        }
    )


def _path(store: Store, key: str) -> Path:
    return store.runs_dir / "plans" / f"{key}.json"


def load_build(store: Store, key: str | None) -> dict[str, Any] | None:
    """A cached build whose versions are all still in the store, else None."""
    if key is None:
        return None
    path = _path(store, key)
    try:
        with open(path) as fh:
            built: dict[str, Any] = json.load(fh)
    except (OSError, ValueError):
        return None
    versions = built.get("versions") or {}
    if not all(store.has_version(v["id"]) for v in versions.values()):
        return None
    return {**built, "seconds": 0.0, "steps": {k: "cached" for k in built.get("steps", {})}}


def save_build(store: Store, key: str | None, built: dict[str, Any]) -> None:
    if key is None:
        return
    path = _path(store, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, built)
