"""Memory limits: parse `--memory-limit`, pick a default, estimate what a frame or a version needs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import polars as pl

from tamis.errors import SpecError

_UNITS = {"": 1, "B": 1, "K": 1e3, "KB": 1e3, "KIB": 2**10, "M": 1e6, "MB": 1e6, "MIB": 2**20}
_UNITS.update({"G": 1e9, "GB": 1e9, "GIB": 2**30, "T": 1e12, "TB": 1e12, "TIB": 2**40})
#: the share of the machine's memory a build may use when no limit is given
DEFAULT_SHARE = 0.5
#: a frame in memory takes about this many times its Parquet payload (decoded, plus working copies)
WORKING_FACTOR = 3.0


def parse_size(text: str | int | float, *, field: str = "--memory-limit") -> int:
    """`1.5GB`, `512MiB`, `800M`, `2e9` -> bytes; a clear error otherwise."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
        unit = (m.group(2) if m else "").upper()
        if not m or unit not in _UNITS:
            raise SpecError(
                f"not a size: {text!r}",
                field=field,
                fix="write a number with a unit, e.g. 1.5GB, 512MiB or 800M",
            )
        value = float(m.group(1)) * _UNITS[unit]
    if value < 2**20:
        raise SpecError(
            f"the memory limit {text!r} is below 1 MiB", field=field, fix="give at least 64MB"
        )
    return int(value)


def machine_memory() -> int:
    """Physical memory of this machine (bytes); the cgroup limit when one is set and smaller."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and 0 < int(raw) < total:
            total = int(raw)
    return int(total)


def process_memory() -> int:
    """This process's resident memory now (bytes; VmRSS, 0 where /proc is not available).

    The limit covers the whole process: what the interpreter and its libraries (Polars, DuckDB,
    pyarrow) already hold when a build starts is not available to its batches and buckets.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


#: the share of the limit a build always keeps for its data, however large the baseline
MIN_BUDGET_SHARE = 0.25


def working_budget(limit: int, baseline: int) -> int:
    """Bytes left for a build's data under `limit` once the process holds `baseline` bytes
    (at least MIN_BUDGET_SHARE of the limit, so a tiny limit still makes progress)."""
    return int(max(limit - baseline, limit * MIN_BUDGET_SHARE))


def default_memory_limit() -> int:
    return int(machine_memory() * DEFAULT_SHARE)


def format_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def row_bytes(frame: pl.DataFrame) -> pl.Series:
    """A deterministic size of every row: string/binary bytes plus fixed widths (8 otherwise).

    It depends only on the row's values, never on how the rows are batched, so part boundaries
    cut on it are the same whatever the engine.
    """
    exprs: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.String:
            exprs.append(col.str.len_bytes().fill_null(0).cast(pl.UInt64) + 4)
        elif dtype == pl.Binary:
            exprs.append(col.bin.size().fill_null(0).cast(pl.UInt64) + 4)
        elif dtype.is_numeric() or dtype == pl.Boolean or dtype.is_temporal():
            width = 1 if dtype == pl.Boolean else max(1, getattr(dtype, "bit_width", 64) // 8)
            exprs.append(pl.lit(width, dtype=pl.UInt64))
        else:
            exprs.append(pl.lit(16, dtype=pl.UInt64))
    if not exprs:
        return pl.Series("row_bytes", [0] * frame.height, dtype=pl.UInt64)
    # with_columns broadcasts a sum of widths only (no string column) to every row
    total = pl.sum_horizontal(exprs).alias("__tamis_row_bytes")
    return frame.with_columns(total).get_column("__tamis_row_bytes").alias("row_bytes")
