"""`read_data`: the rows a command names as DATA, a store ref, a version id or a file.

One reader for every command that takes data (`validate`, `audit`, `train`, ...). A file is read by
the same source reader as a pipeline's `sources:` (`tamis.pipelines.sources`: DuckDB's CSV sniffer,
Polars for Parquet/JSON, `save_to_disk` folders), with its format from the same suffix table
(`tamis.pipelines.spec.infer_format`), so a file reads the same here as in a build.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tamis.errors import StoreError, TamisError
from tamis.pipelines.formats import (
    COMPRESSION_SUFFIXES,
    DATA_SUFFIXES,
    SUFFIX_FORMATS,
    infer_format,
)


@dataclass
class Data:
    """The rows read for a DATA argument and where they came from: a file (`path`) or a store
    version (`ref` as given, `version` its id, `manifest`)."""

    frame: pl.DataFrame
    #: the file or folder read (absolute), None for a store version
    path: Path | None = None
    #: the reference as the user gave it, for a store version
    ref: str | None = None
    #: the version id, for a store version
    version: str | None = None
    manifest: dict[str, Any] | None = None
    #: what the source reader inferred (delimiter, header, types...), for a file
    reader: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def from_store(self) -> bool:
        return self.version is not None

    def sha256(self) -> str | None:
        """The content digest of the file (a folder: names and contents of its files)."""
        from tamis.pipelines.hashing import hash_file, hash_files

        if self.path is None:
            return None
        if self.path.is_file():
            return hash_file(self.path)
        return hash_files([p for p in self.path.rglob("*") if p.is_file()])


def missing_file(what: str, ref: str) -> TamisError:
    """The error for a DATA argument that looks like a file path but names no file."""
    return TamisError(
        f"{what} file does not exist",
        file=ref,
        fix="pass an existing file or a store ref (<pipeline>/<step>)",
    )


def looks_like_file(ref: str) -> bool:
    """A reference ending in a data file suffix (`x.csv`, `x.csv.gz`)."""
    suffixes = [s.lower() for s in Path(ref).suffixes]
    if suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        suffixes = suffixes[:-1]
    return bool(suffixes) and (suffixes[-1] in SUFFIX_FORMATS or suffixes[-1] in DATA_SUFFIXES)


def read_file(path: Path, *, what: str = "data", file: str | None = None) -> Data:
    """Read a data file or folder as a pipeline source of its suffix (or folder content) reads."""
    from tamis.pipelines.sources import read_source_report

    shown = file if file is not None else str(path)
    fmt = infer_format(path)
    if fmt is None:
        kinds = ", ".join(sorted(set(SUFFIX_FORMATS)))
        raise TamisError(
            f"cannot tell the format of the {what} {'folder' if path.is_dir() else 'file'}",
            file=shown,
            fix=f"use one of: {kinds} (also gzip-compressed, e.g. .csv.gz), a folder of "
            ".parquet files, or a `save_to_disk` folder",
        )
    options = _hf_options(path, what) if fmt == "hf" else {}
    read = read_source_report(path, fmt, options, name=what, file=shown)
    return Data(
        frame=read.frame, path=path.resolve(), reader=read.info, warnings=list(read.warnings)
    )


def _hf_options(path: Path, what: str) -> dict[str, Any]:
    """A `save_to_disk` DatasetDict with one split is read as that split; several are an error."""
    index = path / "dataset_dict.json"
    if not index.exists():
        return {}
    try:
        splits = list(json.loads(index.read_text()).get("splits", []))
    except (OSError, ValueError, AttributeError):
        return {}
    if len(splits) == 1:
        return {"split": splits[0]}
    raise TamisError(
        f"{what} folder is a Hugging Face DatasetDict with splits {splits}: which one to read "
        "is not clear",
        file=str(path),
        fix=f"pass one split's folder, e.g. {path / splits[0]}" if splits else None,
        details={"splits": splits},
    )


def read_data(ref_or_path: str | Path, store: Any, *, what: str = "data") -> Data:
    """The rows of DATA: an existing file or folder, else a store ref, a version id or an id
    prefix in `store` (a `Store`, or its directory).

    A reference that ends in a data suffix (`x.csv`) and is neither a file nor in the store is a
    missing file (refs such as `demo/parts.test` end in such a suffix: the store is tried first).
    `what` names the argument in errors ("real", "holdout", ...).
    """
    ref = str(ref_or_path)
    path = Path(ref)
    if path.exists():
        return read_file(path, what=what, file=ref)
    if looks_like_file(ref) and not _store_root(store).is_dir():
        raise missing_file(what, ref)
    st = _open(store)
    try:
        version = st.resolve(ref)
    except StoreError:
        if looks_like_file(ref):
            raise missing_file(what, ref) from None
        raise
    manifest = st.manifest(version)
    return Data(frame=st.read(version), ref=ref, version=version, manifest=dict(manifest))


def _store_root(store: Any) -> Path:
    return Path(store) if isinstance(store, str | Path) else Path(store.root)


def _open(store: Any) -> Any:
    if not isinstance(store, str | Path):
        return store
    from tamis.pipelines.store import Store

    return Store(store)


__all__ = ["Data", "looks_like_file", "missing_file", "read_data", "read_file"]
