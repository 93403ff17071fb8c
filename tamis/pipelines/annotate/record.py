"""The store and file glue of the annotation round trip: the export record, atomic writes.

An export is recorded as a version of step type `annotate_export` (one row per task: opaque task
id, item id, gold flag and label, the order a preference pair was shown in, the suggestion, and the
items' columns); an import as a version of step type `annotate_import`. Files for the tools are
written atomically: never half a directory, never half a file.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import polars as pl

from tamis.errors import StoreError, TamisError
from tamis.pipelines.hashing import module_code_hash
from tamis.pipelines.store import Manifest, Store

TOOLS = ("label-studio", "argilla")
PIPELINE = "annotate"
#: the export record's own columns (the items' columns follow, `orig_<name>` on a clash)
OWN_COLUMNS = ("task_id", "item", "is_gold", "gold_label", "swapped", "position", "suggestion")
#: the import's own columns (the items' columns follow, `orig_<name>` on a clash)
IMPORT_COLUMNS = ("task_id", "item", "annotator", "label", "time", "is_gold", "gold_label", "tool")


def check_tool(tool: str, flag: str) -> str:
    if tool not in TOOLS:
        raise TamisError(f"unknown tool {tool!r}", field=flag, fix=f"use {' or '.join(TOOLS)}")
    return tool


def code_hash() -> str:
    """The hash of the annotation round trip's code (kept in what it records)."""
    return module_code_hash("tamis.pipelines.annotate")


def check_new_dir(to: Path, *, overwrite: bool) -> None:
    """An existing `to` is refused unless `overwrite` (and must then be a directory)."""
    if to.exists() and not overwrite:
        raise TamisError(
            "the export directory already exists",
            file=str(to),
            field="--to",
            fix="pick a new directory, or pass --overwrite to replace the files tamis writes there",
        )
    if to.exists() and not to.is_dir():
        raise TamisError("--to names a file, not a directory", file=str(to), field="--to")


def _write_file(path: Path, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def write_tree_atomic(files: dict[str, str], to: Path, *, overwrite: bool) -> None:
    """Write files into a new directory `to` (built beside it, then renamed: never half a
    directory). With `overwrite` an existing directory is kept and only these files are
    replaced, each atomically."""
    check_new_dir(to, overwrite=overwrite)
    to.parent.mkdir(parents=True, exist_ok=True)
    if not to.exists():
        tmp = to.parent / f".{to.name}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.mkdir()
        try:
            for rel, text in files.items():
                path = tmp / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                _write_file(path, text)
            os.rename(tmp, to)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return
    for rel, text in files.items():
        path = to / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        _write_file(part, text)
        os.replace(part, path)


def write_parquet_atomic(frame: pl.DataFrame, out: Path) -> None:
    part = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    frame.write_parquet(part)
    os.replace(part, out)


def record_export(
    store: Store,
    version_id: str,
    record: pl.DataFrame,
    *,
    params: dict[str, Any],
    report: dict[str, Any],
    parents: list[dict[str, str]],
    seed: int,
) -> Manifest:
    """Write the export record as a version (named `annotate/export-<id>`) and point its ref."""
    manifest = store.write_version(
        version_id=version_id,
        name=f"{PIPELINE}/export-{version_id[:12]}",
        frame=record,
        parents=parents,
        step={
            "name": "export",
            "type": "annotate_export",
            "version": 1,
            "params": params,
            "code": code_hash()[:32],
        },
        seed=seed,
        report=report,
        pipeline=PIPELINE,
        cache_key=version_id,
    )
    store.set_ref(manifest["name"], version_id)
    return manifest


def read_export(store: Store, export: str) -> tuple[str, Manifest, pl.DataFrame]:
    """The export's version id, manifest and record; an error when `export` is not an export."""
    export_id = store.resolve(export)
    manifest = store.manifest_by_id(export_id)
    if (manifest.get("step") or {}).get("type") != "annotate_export":
        raise StoreError(
            f"version {export} is not an annotation export",
            field="--export",
            fix="pass the id printed by `tamis annotate export` (see `tamis versions`)",
        )
    return export_id, manifest, store.read(export_id)


def record_import(
    store: Store,
    version_id: str,
    name: str,
    rows: pl.DataFrame,
    *,
    export_id: str,
    params: dict[str, Any],
    report: dict[str, Any],
    dropped: pl.DataFrame,
) -> None:
    """Write the imported annotations as a version (with its `dropped` table) named `name`."""
    store.write_version(
        version_id=version_id,
        name=name,
        frame=rows,
        parents=[{"id": export_id, "role": "export"}],
        step={"name": "import", "type": "annotate_import", "params": params},
        seed=None,
        report=report,
        tables={"dropped": dropped},
        pipeline=PIPELINE,
        cache_key=version_id,
    )
    store.set_ref(name, version_id)
