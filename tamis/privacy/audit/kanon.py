"""k-anonymity and l-diversity over declared quasi-identifiers (Polars group-bys).

k = size of the smallest equivalence class (rows sharing all quasi-identifier values);
l = smallest number of distinct sensitive values within a class. Numeric quasi-identifiers with
many values can be generalised first with `bins` (equal-frequency bins on the frame itself).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from tamis.errors import DataError


def _generalise(frame: pl.DataFrame, qis: list[str], bins: int) -> pl.DataFrame:
    cols = []
    for c in qis:
        dtype = frame.schema[c]
        if bins > 0 and dtype.is_numeric() and frame[c].n_unique() > bins:
            x = frame[c].cast(pl.Float64).to_numpy()
            edges = np.unique(np.nanquantile(x, np.linspace(0, 1, bins + 1))[1:-1])
            codes = np.where(np.isnan(x), -1, np.searchsorted(edges, x, side="right"))
            cols.append(pl.Series(c, codes, dtype=pl.Int64))
    return frame.with_columns(cols) if cols else frame


def k_anonymity(
    frame: pl.DataFrame,
    quasi_identifiers: list[str],
    sensitive: list[str] | None = None,
    k_threshold: int = 5,
    bins: int = 10,
) -> dict[str, Any]:
    """k, l (if sensitive columns are given) and the share of rows in classes smaller than k."""
    missing = [c for c in [*quasi_identifiers, *(sensitive or [])] if c not in frame.columns]
    if missing:
        raise DataError(
            "quasi-identifier or sensitive column not in the data",
            column=missing[0],
            fix=f"columns: {', '.join(frame.columns)}",
        )
    if not quasi_identifiers:
        return {"skipped": "no quasi_identifiers declared"}
    f = _generalise(frame, quasi_identifiers, bins)
    aggs = [pl.len().alias("size")]
    for s in sensitive or []:
        aggs.append(pl.col(s).n_unique().alias(f"l__{s}"))
    groups = f.group_by(quasi_identifiers).agg(aggs)
    sizes = groups["size"]
    small = groups.filter(pl.col("size") < k_threshold)
    out: dict[str, Any] = {
        "k": int(sizes.min() or 0),  # type: ignore[arg-type]
        "k_threshold": k_threshold,
        "classes": int(groups.height),
        "rows_in_small_classes": int(small["size"].sum() or 0),
        "share_in_small_classes": float((small["size"].sum() or 0) / max(frame.height, 1)),
        "unique_rows_share": float((sizes == 1).sum() / max(frame.height, 1)),
        "quasi_identifiers": quasi_identifiers,
        "bins": bins,
    }
    if sensitive:
        ls = {s: int(groups[f"l__{s}"].min() or 0) for s in sensitive}  # type: ignore[arg-type]
        out["l"] = min(ls.values())
        out["l_by_column"] = ls
    return out
