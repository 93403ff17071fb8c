"""`tamis export`: write a version as Parquet, CSV, JSONL or a Hugging Face `datasets` directory.

Written to a temporary path beside the target and renamed into place, so a failed export never
leaves half a file where the user asked for one.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import polars as pl

from tamis.errors import TamisError
from tamis.pipelines.store import Store

FORMATS = ("parquet", "csv", "jsonl", "hf")


def export_version(store: Store, ref: str, to: str | Path, fmt: str) -> dict[str, Any]:
    if fmt not in FORMATS:
        raise TamisError(
            f"unknown export format '{fmt}'", field="--format", fix=f"one of {', '.join(FORMATS)}"
        )
    version_id = store.resolve(ref)
    target = Path(to)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    df = pl.read_parquet(store.data_path(version_id))
    try:
        if fmt == "parquet":
            df.write_parquet(tmp)
        elif fmt == "csv":
            nested = [c for c, t in df.schema.items() if t.is_nested()]
            if nested:
                raise TamisError(
                    f"CSV cannot hold nested columns {nested}",
                    column=nested[0],
                    fix="export as jsonl, parquet or hf",
                )
            df.write_csv(tmp)
        elif fmt == "jsonl":
            df.write_ndjson(tmp)
        else:
            try:
                import datasets
            except ImportError as exc:
                raise TamisError(
                    "exporting to hf needs the `datasets` package", fix="pip install 'tamis[train]'"
                ) from exc
            datasets.Dataset(df.to_arrow()).save_to_disk(str(tmp))
        if target.exists():
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()
        os.replace(tmp, target)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise
    return {"id": version_id, "path": str(target), "format": fmt, "rows": df.height}
