"""Row-order invariance: a canonical row order and content-seeded subsamples.

Every audit figure must be the same for the same rows in any order. `canonical` sorts a frame on
all its columns; `subsample` picks rows by a seeded hash of their content instead of by position.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def _keys(frame: pl.DataFrame) -> list[pl.Expr]:
    """Sort/hash keys: a Categorical's codes follow first appearance (row order), so its text."""
    return [
        pl.col(c).cast(pl.Utf8) if isinstance(t, pl.Categorical) else pl.col(c)
        for c, t in frame.schema.items()
    ]


def canonical_order(frame: pl.DataFrame) -> np.ndarray:
    """Row positions of `frame` in its canonical order (see `canonical`)."""
    if frame.width == 0 or frame.height < 2:
        return np.arange(frame.height)
    idx = (
        frame.select(_keys(frame))
        .with_row_index("__tamis_row")
        .sort(frame.columns, nulls_last=True, maintain_order=True)["__tamis_row"]
    )
    return idx.to_numpy().astype(np.int64)


def canonical(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` sorted on all its columns (nulls last): the same rows in any order give one frame."""
    if frame.width == 0 or frame.height < 2:
        return frame
    return frame[canonical_order(frame)]


def subsample(frame: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    """`n` rows chosen by a seeded hash of each row's content, kept in their order.

    Unlike a positional draw (`frame.sample(n, seed=...)`), the chosen rows do not depend on the
    order of the rows: the same multiset of rows gives the same subsample.
    """
    if frame.height <= n:
        return frame
    return frame[subsample_index(frame, n, seed)]


def subsample_index(frame: pl.DataFrame, n: int, seed: int) -> np.ndarray:
    """Positions of the rows `subsample` keeps, ascending (all rows when there are <= n)."""
    if frame.height <= n:
        return np.arange(frame.height)
    h = frame.select(_keys(frame)).hash_rows(seed=seed & 0xFFFFFFFF).to_numpy()
    return np.sort(np.argsort(h, kind="stable")[:n])
