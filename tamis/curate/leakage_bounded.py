"""Leakage out of core: the eval sets in memory, the input streamed once, output parts written as
it goes; the same `LeakageScan` as `find_leakage`, so the same output, report and tables.

    parts, report, tables = find_leakage_bounded(engine, lazy, evals, config, out=dir)

Every row check is a join whose small side is an eval set: the exact check's normalised keys,
the eval set's word n-gram hashes, its MinHash band keys (near overlap), its groups and its
earliest time are built once; each batch of the input probes them and its leaked rows are
dropped or flagged at once. Target leakage (cross-validated AUC of each feature) needs the whole
input: it runs on the label and feature columns only, collected after the stream (the caller
checks they fit first). Memory: the eval side, one batch and one open part.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from tamis.curate.dedup.near_bounded import map_batch_rows
from tamis.curate.dedup.spill import Engine, return_freed_memory
from tamis.curate.leakage import LeakageConfig, check_input
from tamis.curate.leakage_scan import LeakageScan, target_columns
from tamis.errors import DataError


def input_counts(source: pl.LazyFrame, config: LeakageConfig) -> tuple[int, dict[str, int]]:
    """(rows, null count of each special column present), one streaming aggregate."""
    names = source.collect_schema().names()
    cols = [c for c in config.special() if c in names]
    row = source.select(
        pl.len().alias("__tamis_rows"), *(pl.col(c).null_count() for c in cols)
    ).collect()
    return int(row["__tamis_rows"][0]), {c: int(row[c][0]) for c in cols}


def batch_rows(engine: Engine, source: pl.LazyFrame, config: LeakageConfig) -> int:
    """Rows per batch: shingling's working set with a text column (as near dedup's map stage),
    else the engine's choice."""
    if config.text:
        return map_batch_rows(engine, source, config.text)
    return engine.pick_batch_rows(source)


def start_scan(
    engine: Engine,
    source: pl.LazyFrame,
    against: dict[str, pl.LazyFrame],
    config: LeakageConfig,
    seed: int,
    check_fits: Callable[[], None] | None,
) -> tuple[LeakageScan, int]:
    """(the scan built on the eval sets, the input's row count), once the input's columns are
    checked and `check_fits` (the caller's memory check) has passed."""
    schema = source.collect_schema()
    rows, nulls = input_counts(source, config)
    check_input(schema, rows, nulls, against, config)
    if check_fits is not None:
        check_fits()
    sets = {name: lf.collect() for name, lf in against.items()}
    return_freed_memory()
    engine.progress("leakage: indexing the eval sets")
    scan = LeakageScan(schema, sets, config, seed)
    return scan, rows


def check_rows_read(read: int, rows: int) -> None:
    if read != rows:
        raise DataError(
            f"the input gave {read:,} of its {rows:,} rows when streamed: a part could not be read",
            fix="run `tamis verify` to find a damaged version, then build again",
        )


def finish_scan(
    engine: Engine, scan: LeakageScan, source: pl.LazyFrame, config: LeakageConfig
) -> tuple[dict[str, Any], dict[str, pl.DataFrame]]:
    """(report, tables): target leakage on the label and feature columns of the whole input
    (collected here) when asked for."""
    target = None
    if config.label and config.target_auc_threshold is not None:
        engine.progress("leakage: target leakage")
        target = source.select(target_columns(source.collect_schema(), config)).collect()
    return scan.finish(target)


def find_leakage_bounded(
    engine: Engine,
    source: pl.LazyFrame,
    against: dict[str, pl.LazyFrame],
    config: LeakageConfig,
    *,
    out: Path,
    seed: int = 0,
    check_fits: Callable[[], None] | None = None,
) -> tuple[list[Any], dict[str, Any], dict[str, pl.DataFrame]]:
    """`find_leakage` streaming the input: its rows after the action go to parts in `out`.

    The eval sets (`against`) are collected once the input's columns are checked and
    `check_fits` (the caller's memory check) has passed. Returns (parts, report, tables), equal
    to the in-memory report and tables.
    """
    scan, rows = start_scan(engine, source, against, config, seed, check_fits)
    size = batch_rows(engine, source, config)
    engine.stats.batch_rows = size
    writer = engine.part_writer(out)
    offset = 0
    out_schema: pl.Schema | None = None
    for batch in engine.batches(source, size):
        frame = scan.batch(batch, offset)
        out_schema = frame.schema
        writer.write(frame)
        offset += batch.height
    check_rows_read(offset, rows)
    parts = writer.close(out_schema)
    report, tables = finish_scan(engine, scan, source, config)
    return parts, report, tables


__all__ = [
    "batch_rows",
    "check_rows_read",
    "find_leakage_bounded",
    "finish_scan",
    "input_counts",
    "start_scan",
]
