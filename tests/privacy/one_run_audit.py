"""An empirical lower bound on epsilon from one training run with canaries (Steinke, Nasr and
Jagielski, "Privacy auditing with one (1) training run", NeurIPS 2023).

m canary rows are each put in the training data with probability 1/2 (independent coin flips).
After training, each canary gets a membership score (here: the DP-trained discriminator's logit,
a white-box attack). The auditor guesses "member" for the k highest scores and "non-member" for
the k lowest, abstaining on the rest. Under (epsilon, 0)-DP each guess is right with probability at
most e^eps / (1 + e^eps), independently enough that the number of correct guesses is dominated by
a Binomial; so any epsilon under which the observed count is too unlikely (p <= beta) is ruled out.
The largest epsilon ruled out is a lower bound at confidence 1 - beta. It must stay below the
claimed epsilon; if it does not, the DP training is broken. (The delta term is handled
conservatively by spending m * delta of beta.)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
from scipy.stats import binom


def epsilon_lower_bound(
    scores: np.ndarray, member: np.ndarray, k: int, beta: float = 0.05, delta: float = 0.0
) -> dict[str, Any]:
    """Largest epsilon rejected at level beta from k top and k bottom guesses (k fixed in advance)."""
    scores = np.asarray(scores, dtype=float)
    member = np.asarray(member, dtype=bool)
    m = len(scores)
    k = max(1, min(k, m // 2))
    order = np.argsort(scores, kind="stable")
    correct = int(member[order[-k:]].sum() + (~member[order[:k]]).sum())
    r = 2 * k
    level = beta - 2 * m * delta
    out: dict[str, Any] = {"canaries": m, "guesses": r, "correct": correct, "beta": beta}
    if level <= 0:
        return {**out, "epsilon_lower_bound": 0.0, "note": "m * delta too large for this beta"}

    def tail(eps: float) -> float:  # P[Binomial(r, p_eps) >= correct]
        p = math.exp(eps) / (1 + math.exp(eps))
        return float(binom.sf(correct - 1, r, p))

    if tail(0.0) > level:
        return {**out, "epsilon_lower_bound": 0.0}
    lo, hi = 0.0, 1.0
    while tail(hi) <= level and hi < 100:
        lo, hi = hi, hi * 2
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if tail(mid) <= level else (lo, mid)
    return {**out, "epsilon_lower_bound": lo}


def make_canaries(df: pl.DataFrame, m: int, seed: int) -> pl.DataFrame:
    """m atypical rows: numbers uniform over the observed range, categories mixed at random."""
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    for name, dtype in df.schema.items():
        s = df.get_column(name).drop_nulls()
        if dtype.is_numeric() and dtype != pl.Boolean and len(s):
            lo, hi = float(s.min()), float(s.max())  # type: ignore[arg-type]
            vals = rng.uniform(lo, hi, m)
            cols[name] = pl.Series(name, vals).cast(dtype, strict=False)
        else:
            cats = s.unique().to_list() or [None]
            cols[name] = pl.Series(name, [cats[i] for i in rng.integers(0, len(cats), m)]).cast(
                dtype
            )
    return pl.DataFrame(cols)
