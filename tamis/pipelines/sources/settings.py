"""What identifies a source import: the file's content (fingerprint), the settings that change
what is read, the reader's code, and where the sources are."""

from __future__ import annotations

import glob
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tamis.errors import SpecError
from tamis.pipelines.catalog import Catalog
from tamis.pipelines.engines.parts import PartInfo
from tamis.pipelines.hashing import hash_file, hash_json, module_code_hash

#: bump when reading behaviour changes, so source versions are re-imported
#: (2: CSV/TSV read by DuckDB's sniffer, padding after the delimiter stripped, header checks)
READER_VERSION = 2

#: source settings with a field of their own on `SourceSpec` (the rest go in `options:`)
CSV_SETTINGS = ("header", "columns", "delimiter", "quote", "skip_initial_space")


@dataclass
class SourceRead:
    """A source's rows, what the reader inferred (delimiter, header, types...), and warnings.

    The rows are `frame` when read into memory (`read_source_report`), or `parts` when streamed
    into Parquet parts (`import_source_parts`; `frame` is then empty)."""

    frame: pl.DataFrame = field(default_factory=pl.DataFrame)
    info: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    parts: list[PartInfo] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        return {"reader": self.info, **({"warnings": self.warnings} if self.warnings else {})}


def is_glob(path: Path) -> bool:
    """A source path with `*`, `?` or `[`: the files it matches (e.g. `parts/*.parquet`)."""
    return any(ch in str(path) for ch in "*?[")


def glob_files(path: Path) -> list[Path]:
    """The files a glob source path matches, sorted (`**` spans folders)."""
    return sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())


def source_exists(path: Path) -> bool:
    return bool(glob_files(path)) if is_glob(path) else path.exists()


def _glob_root(path: Path) -> Path:
    """The folder a glob starts from (its leading parts without wildcards)."""
    root = Path(path.anchor)
    for part in path.parts[len(root.parts) :]:
        if is_glob(Path(part)):
            break
        root = root / part
    return root


def source_fingerprint(path: Path, catalog: Catalog | None) -> str:
    """sha256 of a file (or of every file in a directory or matched by a glob), cached by
    (path, size, mtime)."""
    if is_glob(path):
        root = _glob_root(path)
        return hash_json(
            [[str(p.relative_to(root)), source_fingerprint(p, catalog)] for p in glob_files(path)]
        )
    if path.is_dir():
        parts = []
        for p in sorted(q for q in path.rglob("*") if q.is_file()):
            parts.append([str(p.relative_to(path)), source_fingerprint(p, catalog)])
        return hash_json(parts)
    stat = path.stat()
    if catalog is not None:
        cached = catalog.source_hash(str(path), stat.st_size, stat.st_mtime_ns)
        if cached:
            return cached
    sha = hash_file(path)
    if catalog is not None:
        catalog.remember_source_hash(str(path), stat.st_size, stat.st_mtime_ns, sha)
    return sha


def source_settings(src: Any) -> dict[str, Any]:
    """The settings of a `SourceSpec` that change what is read (part of the source's version id)."""
    out = {k: getattr(src, k) for k in CSV_SETTINGS if getattr(src, k, None) is not None}
    return out


def source_params(spec: Any, name: str) -> dict[str, Any]:
    """What a source's version id hashes besides the file's content: format, settings, reader."""
    src = spec.sources[name]
    return {
        "format": spec.source_format(name),
        "options": src.options,
        **source_settings(src),
        "reader": reader_version(),
    }


def source_paths(spec: Any, *, under: str | Path | None = None) -> dict[str, Path]:
    """Every source's absolute path; with `under`, refuse a source outside that folder.

    `tamis build` prints these paths (a pipeline may read files anywhere the user can) and
    `--sources-under DIR` refuses the rest. Paths are compared after resolving symlinks and
    `..`, so neither can reach outside.
    """
    paths = {name: spec.source_path(name) for name in spec.sources}
    if under is None:
        return paths
    base = Path(under).resolve()
    for name, path in paths.items():
        if not path.is_relative_to(base):
            raise SpecError(
                f"source '{name}' reads {path}, outside {base} (--sources-under)",
                file=spec.file,
                field=f"sources.{name}.path",
                fix="move the file under that folder, or drop --sources-under if you trust "
                "this pipeline",
            )
    return paths


def warn_stderr(source: str, warnings: list[str]) -> None:
    """Print a source's warnings on stderr (the build report carries them too)."""
    for w in warnings:
        sys.stderr.write(f"warning: source '{source}': {w}\n")


def reader_version() -> str:
    """The source reader's code: its manual version and the hash of its modules' source."""
    code = module_code_hash("tamis.pipelines.sources")[:32]
    return f"{READER_VERSION}-{code}"
