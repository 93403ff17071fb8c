"""Datasets that ship inside installed packages, written once as Parquet sources for a sweep.

`sklearn:NAME` calls the bundled `sklearn.datasets.load_NAME(as_frame=True)` (iris, digits, wine,
breast_cancer, diabetes, linnerud: no network); `statsmodels:NAME` reads
`statsmodels.datasets.NAME.load_pandas().data` (fair, anes96, ... all bundled).
Options: `columns: {name: SQL expression}` adds derived columns (e.g. a binary label),
`drop: [names]` removes columns; anything else is passed to the loader.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import polars as pl

from tamis.errors import SpecError
from tamis.pipelines.hashing import hash_json

SKLEARN_BUNDLED = ("iris", "digits", "wine", "breast_cancer", "diabetes", "linnerud")


def load_bundled(loader: str, options: dict[str, Any] | None = None) -> pl.DataFrame:
    options = dict(options or {})
    derived: dict[str, str] = options.pop("columns", {}) or {}
    drop: list[str] = options.pop("drop", []) or []
    frame = _load(loader, options)
    try:
        if derived:
            frame = frame.with_columns([pl.sql_expr(e).alias(n) for n, e in derived.items()])
    except Exception as exc:
        raise SpecError(
            f"cannot compute derived columns {derived}: {exc}",
            field="datasets.options.columns",
            fix=f"SQL expressions over: {', '.join(frame.columns)}",
        ) from None
    missing = [c for c in drop if c not in frame.columns]
    if missing:
        raise SpecError(
            f"cannot drop unknown column '{missing[0]}'",
            field="datasets.options.drop",
            fix=f"columns: {', '.join(frame.columns)}",
        )
    return frame.drop(drop)


def _load(loader: str, options: dict[str, Any]) -> pl.DataFrame:
    kind, _, name = loader.partition(":")
    if kind == "sklearn":
        if name not in SKLEARN_BUNDLED:
            raise SpecError(
                f"'{loader}' is not a dataset bundled with scikit-learn",
                field="datasets.loader",
                fix=f"use one of: {', '.join('sklearn:' + n for n in SKLEARN_BUNDLED)}",
            )
        import sklearn.datasets

        bunch: Any = getattr(sklearn.datasets, f"load_{name}")(as_frame=True, **options)
        frame = bunch.frame
        frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
        return pl.from_pandas(frame)
    if kind == "statsmodels":
        import importlib

        try:
            module: Any = importlib.import_module(f"statsmodels.datasets.{name}")
        except ImportError:
            raise SpecError(
                f"statsmodels bundles no dataset '{name}'",
                field="datasets.loader",
                fix="see statsmodels.datasets (e.g. statsmodels:fair)",
            ) from None
        return pl.from_pandas(module.load_pandas().data)
    raise SpecError(
        f"unknown dataset loader '{loader}'",
        field="datasets.loader",
        fix="write `sklearn:NAME` or `statsmodels:NAME`",
    )


def materialize(loader: str, options: dict[str, Any], directory: Path) -> Path:
    """Write the dataset as Parquet under `directory` (once; the file name is its content key)."""
    key = hash_json({"loader": loader, "options": options})[:16]
    path = directory / f"{loader.replace(':', '-')}-{key}.parquet"
    if path.exists():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    frame = load_bundled(loader, options)
    tmp = directory / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    frame.write_parquet(tmp)
    os.replace(tmp, path)
    return path
