"""Leakage under the Ray engine.

    parts, report, tables = ray_find_leakage(engine, source, against, config, out=dir, ...)

Today the input streams through the driver's local bounded engine (`find_leakage_bounded`), with
the same memory check and the same parts, report and tables.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from tamis.curate.leakage import LeakageConfig
from tamis.curate.leakage_bounded import find_leakage_bounded


def ray_find_leakage(
    engine: Any,
    source: pl.LazyFrame,
    against: dict[str, pl.LazyFrame],
    config: LeakageConfig,
    *,
    out: Path,
    seed: int = 0,
    check_fits: Callable[[], None] | None = None,
) -> tuple[list[Any], dict[str, Any], dict[str, pl.DataFrame]]:
    """`find_leakage_bounded` for a `RayEngine` (`engine`)."""
    return find_leakage_bounded(
        engine.local, source, against, config, out=out, seed=seed, check_fits=check_fits
    )


__all__ = ["ray_find_leakage"]
