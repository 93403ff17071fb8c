"""Bradley-Terry scores from pairwise votes.

    bt = bradley_terry(votes, left="left", right="right", winner="winner")
    bt.scores               # log-strengths, one per compared thing

Bradley-Terry (Hunter 2004, MM algorithm): `P(i beats j) = p_i / (p_i + p_j)`, maximum likelihood
by `p_i <- W_i / sum_j n_ij / (p_i + p_j)`. With `prior > 0` every item also plays `prior` virtual
wins and `prior` virtual losses against a reference of strength 1 (a Bayesian-style smoothing that
keeps items that never win or never lose finite); with `prior = 0` the plain MLE is returned
(scaled to geometric mean 1), which only exists when the comparison graph is strongly connected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from tamis.curate.annotation.columns import require_columns
from tamis.errors import DataError

EPS = 1e-12


@dataclass
class BradleyTerryResult:
    names: list[Any]
    strengths: np.ndarray
    wins: np.ndarray
    comparisons: np.ndarray
    n_iter: int
    converged: bool

    @property
    def scores(self) -> np.ndarray:
        """Log-strengths (centred at 0 without a prior)."""
        return np.log(self.strengths)

    def table(self) -> pl.DataFrame:
        order = np.argsort(-self.scores, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(1, len(order) + 1)
        return pl.DataFrame(
            {
                "name": [str(x) for x in self.names],
                "score": self.scores,
                "strength": self.strengths,
                "wins": self.wins.astype(np.int64),
                "comparisons": self.comparisons.astype(np.int64),
                "rank": rank,
            }
        ).sort("rank")


def win_matrix(
    df: pl.DataFrame, *, left: str, right: str, winner: str
) -> tuple[np.ndarray, list[Any], int]:
    """W[i, j] = times i beat j; votes whose winner is neither side are counted and left out."""
    require_columns(
        df,
        {"left": left, "right": right, "winner": winner},
        fix="set left/right/winner to the columns of the two sides and the vote",
    )
    data = df.select(
        pl.col(left).cast(pl.String), pl.col(right).cast(pl.String), pl.col(winner).cast(pl.String)
    ).drop_nulls()
    ok = (pl.col(winner) == pl.col(left)) | (pl.col(winner) == pl.col(right))
    bad = data.filter(~ok).height
    data = data.filter(ok)
    names = sorted(set(data[left].to_list()) | set(data[right].to_list()))
    pos = {x: n for n, x in enumerate(names)}
    w = np.zeros((len(names), len(names)))
    for lft, rgt, win in data.iter_rows():
        if win == lft:
            w[pos[lft], pos[rgt]] += 1
        else:
            w[pos[rgt], pos[lft]] += 1
    return w, names, bad


def bradley_terry_matrix(
    w: np.ndarray, *, prior: float = 1.0, max_iter: int = 10_000, tol: float = 1e-10
) -> tuple[np.ndarray, int, bool]:
    """Strengths from a win matrix by Hunter's MM updates (see the module docstring)."""
    n_ij = w + w.T
    wins = w.sum(axis=1)
    p = np.ones(w.shape[0])
    converged = False
    it = 0
    for _round in range(max_iter):
        it += 1
        denom = (n_ij / (p[:, None] + p[None, :])).sum(axis=1)
        num = wins.copy()
        if prior > 0:
            num = num + prior
            denom = denom + 2.0 * prior / (p + 1.0)
        new = num / np.maximum(denom, EPS)
        new = np.maximum(new, EPS)
        if prior <= 0:
            new = new / np.exp(np.log(new).mean())
        change = float(np.abs(np.log(new) - np.log(p)).max())
        p = new
        if change < tol:
            converged = True
            break
    return p, it, converged


def bradley_terry(
    df: pl.DataFrame, *, left: str, right: str, winner: str, prior: float = 1.0
) -> BradleyTerryResult:
    """Bradley-Terry strengths of everything compared in `(left, right, winner)` votes."""
    w, names, _bad = win_matrix(df, left=left, right=right, winner=winner)
    if not names:
        raise DataError(
            "no pairwise votes whose winner is one of the two sides",
            column=winner,
            fix="`winner` must hold the value of `left` or of `right` (or set `sides`)",
        )
    p, it, conv = bradley_terry_matrix(w, prior=prior)
    return BradleyTerryResult(names, p, w.sum(axis=1), (w + w.T).sum(axis=1), it, conv)
