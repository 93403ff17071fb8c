"""Workload error: how far the synthetic rows' low-order marginals are from the real ones.

The figure marginal-based synthesizers (`dp_mst`, `dp_aim`) are judged by, computed for every
synthesizer: over the workload of all 1-way and all 2-way marginals of the audited columns, the L1
distance between the real and the synthetic marginal, each normalised to sum 1 (so in [0, 2]).
It reads real rows, so it lives in the audit and is never released by a DP step.

Cells: a numeric column with more than `bins` distinct values is cut at equal-width edges between
its public bounds when the audit has them, else at the real data's inner quantiles (closed on the
left, like `np.searchsorted(..., side="right")`); any other column is taken value by value. A null
is a cell of its own; a synthetic value outside the real (or public) categories falls in one
`(new)` cell, which the real marginal never fills. Only counts are used, so no figure depends on
row order.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import polars as pl

NULL = "\x00(null)"


def _cells(
    real: pl.Series, synthetic: pl.Series, bins: int, public: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, int]:
    """Cell ids of both columns on the real column's (or public) cells, and the cell count."""
    numeric = real.dtype.is_numeric() and real.dtype != pl.Boolean
    if numeric and synthetic.dtype.is_numeric() and real.n_unique() > bins:
        r = real.cast(pl.Float64).fill_null(np.nan).to_numpy()
        s = synthetic.cast(pl.Float64).fill_null(np.nan).to_numpy()
        if "bounds" in public:
            lo, hi = (float(b) for b in public["bounds"])
            edges = np.linspace(lo, hi, bins + 1)[1:-1]
        else:
            edges = np.unique(np.quantile(r[~np.isnan(r)], np.linspace(0, 1, bins + 1)[1:-1]))
        n = edges.size + 2  # the bins, and the null cell last

        def code(v: np.ndarray) -> np.ndarray:
            out = np.full(v.size, n - 1, dtype=np.int64)
            ok = ~np.isnan(v)
            out[ok] = np.searchsorted(edges, v[ok], side="right")
            return out

        return code(r), code(s), n
    known = public.get("categories")
    as_text = [
        col.cast(pl.String).fill_null(NULL).to_numpy().astype(str) for col in (real, synthetic)
    ]
    values = sorted({*(str(v) for v in known), NULL} if known else set(as_text[0]) | {NULL})
    index = {v: i for i, v in enumerate(values)}
    new = len(values)
    codes = [np.fromiter((index.get(v, new) for v in col), np.int64, col.size) for col in as_text]
    return codes[0], codes[1], new + 1


def workload_error(
    real: pl.DataFrame,
    synthetic: pl.DataFrame,
    *,
    bins: int = 10,
    public: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Mean (and worst) L1 distance between real and synthetic 1-way and 2-way marginals."""
    public = public or {}
    cols = [c for c in real.columns if c in synthetic.columns]
    codes: dict[str, tuple[np.ndarray, np.ndarray, int]] = {
        c: _cells(real[c], synthetic[c], bins, public.get(c, {})) for c in cols
    }

    def l1(key_r: np.ndarray, key_s: np.ndarray, size: int) -> float:
        a = np.bincount(key_r, minlength=size) / max(key_r.size, 1)
        b = np.bincount(key_s, minlength=size) / max(key_s.size, 1)
        return float(np.abs(a - b).sum())

    one = {c: l1(r, s, n) for c, (r, s, n) in codes.items()}
    two: dict[tuple[str, str], float] = {}
    for a, b in combinations(cols, 2):
        ra, sa, na = codes[a]
        rb, sb, nb = codes[b]
        two[(a, b)] = l1(ra * nb + rb, sa * nb + sb, na * nb)
    out: dict[str, Any] = {
        "workload": "all 1-way and 2-way marginals of the audited columns",
        "bins": bins,
        "n_marginals_1way": len(one),
        "n_marginals_2way": len(two),
        "l1_mean_1way": float(np.mean(list(one.values()))) if one else float("nan"),
        "l1_mean_2way": float(np.mean(list(two.values()))) if two else float("nan"),
    }
    if two:
        worst = max(two, key=lambda k: (two[k], k))
        out.update(l1_max_2way=two[worst], worst_pair=list(worst))
    out["columns"] = {c: round(v, 6) for c, v in one.items()}
    return out
