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


def canonical(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` sorted on all its columns (nulls last): the same rows in any order give one frame."""
    if frame.width == 0 or frame.height < 2:
        return frame
    return frame.sort(_keys(frame), nulls_last=True, maintain_order=True)


def subsample(frame: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    """`n` rows chosen by a seeded hash of each row's content, kept in their order.

    Unlike a positional draw (`frame.sample(n, seed=...)`), the chosen rows do not depend on the
    order of the rows: the same multiset of rows gives the same subsample.
    """
    if frame.height <= n:
        return frame
    h = frame.select(_keys(frame)).hash_rows(seed=seed & 0xFFFFFFFF).to_numpy()
    keep = np.sort(np.argsort(h, kind="stable")[:n])
    return frame[keep]
