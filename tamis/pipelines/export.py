"""`tamis export`: write a version as Parquet, CSV, TSV, JSONL, JSON or a Hugging Face directory.

Nothing the user owns is deleted or silently overwritten:
- an existing target is refused unless `overwrite` is set; then a file is replaced atomically
  (written to a temporary file in the same directory, then `os.replace`); a directory is never
  replaced (an `hf` export goes into a new directory only, renamed into place when complete);
- a target inside the store, or that is (or is inside) a source a pipeline of this store read,
  is refused, with or without `overwrite`;
- without `overwrite` a file is put in place with a hard link, which fails if the name was
  taken meanwhile, so even a race never replaces a file.

The format follows the target's suffix when none is given (`.parquet`, `.csv`, `.tsv`, `.jsonl`,
`.json`; no suffix means an `hf` directory); a suffix that contradicts the format is an error.
CSV and TSV cells (and column names) that a spreadsheet would run as a formula (starting with
`=`, `+`, `-`, `@`, tab or carriage return) get a leading `'`, as OWASP recommends, unless
`escape_formulas=False`; the result says how many cells were escaped.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import stat
import uuid
from pathlib import Path
from typing import Any

import polars as pl

from tamis.errors import TamisError
from tamis.pipelines.formats import DATA_SUFFIXES
from tamis.pipelines.store import Store, is_no_space

FORMATS = ("parquet", "csv", "tsv", "jsonl", "json", "hf")
SUFFIX_FORMATS = DATA_SUFFIXES
#: first characters that make a spreadsheet read a cell as a formula (OWASP CSV injection)
FORMULA_START = "=+-@\t\r"
_FORMULA_RE = r"^[=+\-@\t\r]"


def export_format(target: Path, fmt: str | None) -> str:
    """The format to write: `fmt` if given (checked against the suffix), else the suffix's."""
    suffix = target.suffix.lower()
    implied = SUFFIX_FORMATS.get(suffix)
    if fmt is not None:
        if fmt not in FORMATS:
            raise TamisError(
                f"unknown export format '{fmt}'",
                field="--format",
                fix=f"one of {', '.join(FORMATS)}",
            )
        if implied is not None and implied != fmt:
            raise TamisError(
                f"--format {fmt} contradicts the target's suffix '{suffix}' (a {implied} file)",
                file=str(target),
                field="--format",
                fix=f"drop --format, or name the target for {fmt}"
                + (" (a directory name without suffix)" if fmt == "hf" else ""),
            )
        return fmt
    if implied is not None:
        return implied
    if suffix and not target.is_dir():
        raise TamisError(
            f"cannot tell the export format from the suffix '{suffix}'",
            file=str(target),
            field="--to",
            fix=f"pass --format ({', '.join(FORMATS)}) or use one of "
            f"{', '.join(sorted(SUFFIX_FORMATS))}",
        )
    return "hf"


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def source_paths(store: Store) -> list[Path]:
    """Every source file or directory a pipeline of this store read (from the catalog)."""
    if not store.catalog.path.exists():
        return []
    paths: set[str] = set(store.catalog.source_files())
    for version_id in store.catalog.source_versions():
        with contextlib.suppress(Exception):
            params = (store.manifest_by_id(version_id).get("step") or {}).get("params") or {}
            if params.get("path"):
                paths.add(str(params["path"]))
    return [Path(os.path.realpath(p)) for p in sorted(paths)]


def _refuse(target: Path, message: str, fix: str) -> TamisError:
    return TamisError(message, file=str(target), field="--to", fix=fix)


def check_target(store: Store, target: Path, fmt: str, overwrite: bool) -> bool:
    """Refuse a target that would delete or overwrite what the user owns; True if it exists."""
    real = Path(os.path.realpath(target))
    store_root = Path(os.path.realpath(store.root))
    if _inside(real, store_root) or _inside(store_root, real):
        raise _refuse(
            target,
            f"refusing to export into the store ({store.root}) or over a folder holding it",
            "export to a path outside the store",
        )
    for src in source_paths(store):
        if _inside(real, src) or _inside(src, real):
            raise _refuse(
                target,
                f"refusing to export over a pipeline's source ({src})",
                "export to a new path; sources are never overwritten",
            )
    exists = os.path.lexists(target)
    if not exists:
        return False
    if real.is_dir() or fmt == "hf":
        raise _refuse(
            target,
            "the target exists and is a directory"
            if real.is_dir()
            else "the target exists (an hf export writes a new directory)",
            "choose a new path; tamis never deletes or replaces a directory",
        )
    if not overwrite:
        raise _refuse(
            target,
            "the target file exists",
            "pass --overwrite to replace it (atomically), or choose another path",
        )
    if not real.exists() or not stat.S_ISREG(real.stat().st_mode):
        raise _refuse(
            target,
            "the target is not a regular file (a device, pipe, socket or broken link)",
            "export to a regular file path",
        )
    return True


def _escape_formulas(frame: pl.LazyFrame) -> tuple[pl.LazyFrame, int]:
    """Prefix `'` to text cells and column names that start like a formula; count them (one
    streamed pass over the rows for the count; the escaping itself stays lazy)."""
    exprs = []
    hits = []
    for name, dtype in frame.collect_schema().items():
        if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
            text = pl.col(name).cast(pl.String)
            hit = text.str.contains(_FORMULA_RE).fill_null(False)
            hits.append(hit.sum().cast(pl.Int64).alias(name))
            exprs.append(pl.when(hit).then(pl.lit("'") + text).otherwise(text).alias(name))
    count = 0
    if exprs:
        counts = frame.select(hits).collect(engine="streaming")
        count = int(sum(counts.row(0)))
        frame = frame.with_columns(exprs)
    names = frame.collect_schema().names()
    renames = {c: "'" + c for c in names if c[:1] and c[0] in FORMULA_START}
    count += len(renames)
    return (frame.rename(renames) if renames else frame), count


def _rename_noreplace(src: Path, dst: Path) -> None:
    """Rename that fails if `dst` exists, even empty (Linux renameat2 RENAME_NOREPLACE)."""
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is not None:
        at_fdcwd, rename_noreplace = -100, 1
        if fn(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), rename_noreplace) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(code, os.strerror(code), str(dst))
    if os.path.lexists(dst):  # no renameat2 here: check, then rename
        raise FileExistsError(errno.EEXIST, "exists", str(dst))
    os.rename(src, dst)


def _write(frame: pl.LazyFrame, path: Path, fmt: str) -> None:
    """Write the rows; Parquet, CSV, TSV and JSONL stream from the version's parts."""
    if fmt == "parquet":
        frame.sink_parquet(path)
    elif fmt in ("csv", "tsv"):
        frame.sink_csv(path, separator="\t" if fmt == "tsv" else ",")
    elif fmt == "jsonl":
        frame.sink_ndjson(path)
    elif fmt == "json":
        frame.collect().write_json(path)
    else:
        try:
            import datasets
        except ImportError as exc:
            raise TamisError(
                "exporting to hf needs the `datasets` package", fix="pip install 'tamis[train]'"
            ) from exc
        # no tqdm "Saving the dataset (1/1 shards)" bars on stderr (they broke --json logs)
        bars_were_on = not datasets.are_progress_bars_disabled()
        datasets.disable_progress_bars()
        try:
            datasets.Dataset(frame.collect().to_arrow()).save_to_disk(str(path))
        finally:
            if bars_were_on:
                datasets.enable_progress_bars()


def _write_checked(
    store: Store, version_id: str, frame: pl.LazyFrame, path: Path, fmt: str
) -> None:
    """`_write`, with data that cannot be read (damage the cheap checks missed) as a clear
    error rather than a Polars traceback."""
    try:
        _write(frame, path, fmt)
    except BaseException as exc:  # a Polars panic is a BaseException
        unreadable = isinstance(exc, pl.exceptions.PolarsError) or type(exc).__name__ in (
            "PanicException",
        )
        if not unreadable or is_no_space(exc):
            raise
        raise TamisError(
            f"version {version_id[:12]} cannot be read ({exc})",
            file=str(store.version_dir(version_id)),
            fix="run `tamis verify`; `tamis build --force` on the pipeline that made it "
            "rebuilds it",
        ) from None


def export_version(
    store: Store,
    ref: str,
    to: str | Path,
    fmt: str | None = None,
    *,
    overwrite: bool = False,
    escape_formulas: bool = True,
) -> dict[str, Any]:
    target = Path(to).expanduser()
    fmt = export_format(target, fmt)
    version_id = store.resolve(ref)
    existed = check_target(store, target, fmt, overwrite)
    if existed and target.is_symlink():
        target = Path(os.path.realpath(target))  # replace the file the link names, keep the link
    frame = store.scan(version_id)  # checked like a read; streamed, never loaded whole
    rows = store.manifest_by_id(version_id)["rows"]
    escaped = 0
    if fmt in ("csv", "tsv"):
        nested = [c for c, t in frame.collect_schema().items() if t.is_nested()]
        if nested:
            raise TamisError(
                f"{fmt.upper()} cannot hold nested columns {nested}",
                column=nested[0],
                fix="export as jsonl, json, parquet or hf",
            )
        if escape_formulas:
            frame, escaped = _escape_formulas(frame)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        _write_checked(store, version_id, frame, tmp, fmt)
        if fmt == "hf":
            _rename_noreplace(tmp, target)  # never replaces a directory that appeared meanwhile
        elif existed:
            os.replace(tmp, target)  # --overwrite: atomic, the old file or the new, never half
        else:
            try:
                os.link(tmp, target)  # fails if the name was taken meanwhile
            except FileExistsError:
                raise
            except OSError:  # no hard links on this file system: check, then rename
                if os.path.lexists(target):
                    raise FileExistsError(errno.EEXIST, "exists", str(target)) from None
                os.replace(tmp, target)
    except FileExistsError:
        raise TamisError(
            "the target appeared while exporting; it was left as it is",
            file=str(target),
            field="--to",
            fix="choose another path (or --overwrite for a file)",
        ) from None
    finally:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)  # our own temporary directory only
        elif os.path.lexists(tmp):
            tmp.unlink()
    result: dict[str, Any] = {
        "id": version_id,
        "path": str(target),
        "format": fmt,
        "rows": rows,
        "overwrote": existed,
    }
    if fmt in ("csv", "tsv"):
        result["escaped_cells"] = escaped
        result["formulas_escaped"] = escape_formulas
    return result


def describe(result: dict[str, Any]) -> str:
    """One line for people."""
    text = f"wrote {result['rows']:,} rows to {result['path']} ({result['format']})"
    if result.get("overwrote"):
        text += ", replacing the old file"
    if "escaped_cells" in result:
        if result["formulas_escaped"]:
            text += f"; {result['escaped_cells']:,} cells that start like a formula got a leading '"
        else:
            text += "; formula escaping off (--no-escape-formulas)"
    return text
