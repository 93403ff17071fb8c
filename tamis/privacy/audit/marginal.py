"""A membership attack aimed at marginal-based synthesizers (MST, AIM, PrivBayes...).

Such synthesizers release rows drawn from a model of low-order marginals of their training data,
so they keep no record's neighbourhood (distance attacks see little) but every training record
adds its weight to the cells it falls in. The attacker compares a record's likelihood under the
released synthetic rows' marginals with its likelihood under the same marginals of reference rows
from the population (DOMIAS's density ratio, with marginals as the density):

    score(x) = sum over the marginals M of  log p_synthetic(x_M) - log p_reference(x_M)

with the 1-way marginals (`degree: 1`) or every 2-way marginal (`degree: 2`, the pairwise
composite likelihood; the default) and add-`alpha` smoothing,
p_D(x_M) = (count_D(x_M) + alpha) / (|D| + alpha * cells(M)). Columns are discretised from what
the attacker holds (synthetic and reference rows): numbers in `bins` quantile bins of those rows
(a missing value is its own bin), other columns as text (unseen values share one code, a missing
value has its own).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import polars as pl


@dataclass
class Discretizer:
    """Column -> small integer codes, fitted on the attacker's rows."""

    edges: dict[str, np.ndarray] = field(default_factory=dict)
    categories: dict[str, dict[str, int]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)

    @classmethod
    def fit(cls, frame: pl.DataFrame, bins: int = 10) -> Discretizer:
        d = cls(columns=list(frame.columns))
        for col, dtype in frame.schema.items():
            s = frame[col]
            if dtype.is_numeric() or dtype == pl.Boolean:
                x = s.cast(pl.Float64).fill_nan(None).drop_nulls().to_numpy()
                qs = np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]) if len(x) else []
                d.edges[col] = np.unique(np.asarray(qs, dtype=np.float64))
                d.sizes[col] = len(d.edges[col]) + 2  # bins + missing
            else:
                values = sorted(s.cast(pl.Utf8).drop_nulls().unique().to_list())
                d.categories[col] = {v: i for i, v in enumerate(values)}
                d.sizes[col] = len(values) + 2  # values + unseen + missing
        return d

    def transform(self, frame: pl.DataFrame) -> np.ndarray:
        out = np.empty((frame.height, len(self.columns)), dtype=np.int64)
        for j, col in enumerate(self.columns):
            s = frame[col]
            if col in self.edges:
                x = np.asarray(
                    s.cast(pl.Float64, strict=False).fill_nan(None).to_numpy(), dtype=np.float64
                )
                codes = np.searchsorted(self.edges[col], x, side="right")
                out[:, j] = np.where(np.isnan(x), self.sizes[col] - 1, codes)
            else:
                cats = self.categories[col]
                unseen, missing = len(cats), len(cats) + 1
                vals = s.cast(pl.Utf8, strict=False).to_list()
                out[:, j] = [missing if v is None else cats.get(v, unseen) for v in vals]
        return out


def _marginals(degree: int, width: int) -> list[tuple[int, ...]]:
    if degree == 1 or width < 2:
        return [(j,) for j in range(width)]
    return list(combinations(range(width), 2))


def _cell(codes: np.ndarray, cols: tuple[int, ...], sizes: list[int]) -> np.ndarray:
    cell = codes[:, cols[0]].copy()
    for c in cols[1:]:
        cell = cell * sizes[c] + codes[:, c]
    return cell


def marginal_scorer(
    synthetic: pl.DataFrame,
    reference: pl.DataFrame,
    *,
    degree: int = 2,
    bins: int = 10,
    alpha: float = 0.5,
    marginals: list[list[str]] | None = None,
) -> Callable[[pl.DataFrame], np.ndarray]:
    """A scorer: frame of records -> log-likelihood ratio (synthetic vs reference marginals).

    `marginals` names the column sets to use (e.g. the cliques a marginal synthesizer reports it
    measured); by default all 1-way (`degree` 1) or all 2-way (`degree` 2) marginals.
    """
    disc = Discretizer.fit(pl.concat([synthetic, reference], how="vertical_relaxed"), bins)
    sizes = [disc.sizes[c] for c in disc.columns]
    if marginals:
        pos = {c: j for j, c in enumerate(disc.columns)}
        margs = [tuple(pos[c] for c in m) for m in marginals]
    else:
        margs = _marginals(degree, len(sizes))
    tables = []
    for data in (disc.transform(synthetic), disc.transform(reference)):
        per = []
        for cols in margs:
            cells = int(np.prod([sizes[c] for c in cols]))
            counts = np.bincount(_cell(data, cols, sizes), minlength=cells).astype(np.float64)
            per.append(np.log((counts + alpha) / (len(data) + alpha * cells)))
        tables.append(per)

    def score(frame: pl.DataFrame) -> np.ndarray:
        codes = disc.transform(frame.select(disc.columns))
        total = np.zeros(frame.height, dtype=np.float64)
        for m, cols in enumerate(margs):
            cell = _cell(codes, cols, sizes)
            total += tables[0][m][cell] - tables[1][m][cell]
        return total

    return score


def released_marginals(manifest: dict[str, Any] | None, columns: list[str]) -> list[list[str]]:
    """The marginals a marginal synthesizer's version reports it measured (`selected[].clique`
    of `dp_mst`/`dp_aim`), in order, without repeats, when all their columns are audited."""
    report = (manifest or {}).get("report") or {}
    out: list[list[str]] = []
    for entry in report.get("selected") or []:
        clique = entry.get("clique") if isinstance(entry, dict) else None
        if (
            isinstance(clique, list)
            and clique
            and all(isinstance(c, str) and c in columns for c in clique)
            and clique not in out
        ):
            out.append(list(clique))
    return out
