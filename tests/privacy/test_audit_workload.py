"""The audit's workload error (issue 17): mean L1 over all 1- and 2-way marginals, checked against
a pandas twin on messy adult rows, independent of row order, and a gate figure."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from tamis.privacy.audit import AuditConfig, run_audit
from tamis.privacy.audit.gate import metric_names
from tamis.privacy.audit.marginals import workload_error

COLS = ["age", "workclass", "education-num", "sex", "hours-per-week", "income"]


def _messy_synthetic(real: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Other adult rows with ages moved, a category no real row has, and extra nulls."""
    rng = np.random.default_rng(seed)
    syn = real.sample(n=real.height, with_replacement=True, seed=seed)
    age = syn["age"].to_numpy() + rng.integers(-5, 6, syn.height)
    work = syn["workclass"].to_list()
    for i in rng.choice(syn.height, 200, replace=False):
        work[i] = "Astronaut" if i % 2 else None
    return syn.with_columns(pl.Series("age", age), pl.Series("workclass", work, pl.String))


def _cells(real: pd.Series, syn: pd.Series, bins: int) -> tuple[pd.Series, pd.Series]:
    """Twin of the cell rule with pandas: pd.cut at the real inner quantiles (closed left), or
    values with unseen ones as '(new)'; nulls a cell of their own."""
    if pd.api.types.is_numeric_dtype(real) and real.nunique(dropna=False) > bins:
        edges = np.unique(np.quantile(real.dropna(), np.linspace(0, 1, bins + 1)[1:-1]))
        cut = [-np.inf, *edges, np.inf]
        return tuple(  # type: ignore[return-value]
            pd.cut(s, cut, right=False, labels=False).astype("Int64").astype(str)
            for s in (real, syn)
        )
    seen = set(real.dropna().astype(str))
    r = real.astype(object).where(real.notna(), "(null)").astype(str)
    s = syn.astype(object).where(syn.notna(), "(null)").astype(str)
    s = s.where(s.isin(seen | {"(null)"}), "(new)")
    return r, s


def _l1(r: pd.DataFrame, s: pd.DataFrame) -> float:
    keys = list(r.columns)
    a = r.value_counts(normalize=True)
    b = s.value_counts(normalize=True)
    a.index, b.index = (pd.MultiIndex.from_tuples(x.index, names=keys) for x in (a, b))
    both = pd.concat([a, b], axis=1).fillna(0.0)
    return float((both.iloc[:, 0] - both.iloc[:, 1]).abs().sum())


def test_workload_error_matches_pandas_on_messy_adult(adult_tr: pl.DataFrame) -> None:
    real = adult_tr.select(COLS).head(3000)
    syn = _messy_synthetic(adult_tr.select(COLS).tail(5000), seed=1)
    got = workload_error(real, syn, bins=10)
    pr, ps = real.to_pandas(), syn.to_pandas()
    cells = {c: _cells(pr[c], ps[c], 10) for c in COLS}
    one = {c: _l1(cells[c][0].to_frame(), cells[c][1].to_frame()) for c in COLS}
    two = {
        (a, b): _l1(
            pd.concat([cells[a][0], cells[b][0]], axis=1),
            pd.concat([cells[a][1], cells[b][1]], axis=1),
        )
        for a, b in combinations(COLS, 2)
    }
    assert got["n_marginals_1way"] == 6 and got["n_marginals_2way"] == 15
    assert got["l1_mean_1way"] == pytest.approx(np.mean(list(one.values())), abs=1e-12)
    assert got["l1_mean_2way"] == pytest.approx(np.mean(list(two.values())), abs=1e-12)
    worst = max(two, key=lambda k: two[k])
    assert got["l1_max_2way"] == pytest.approx(two[worst], abs=1e-12)
    assert got["worst_pair"] == list(worst)
    # the moved ages and the new category show; identical rows give zero
    assert got["columns"]["age"] > 0.05 and got["columns"]["workclass"] > 0.0
    assert workload_error(real, real)["l1_mean_2way"] == 0.0
    # row order changes nothing
    shuffled = workload_error(real.sample(fraction=1.0, shuffle=True, seed=3), syn.reverse())
    assert shuffled == got


def test_audit_reports_workload_error_and_gate_can_bound_it(adult_tr: pl.DataFrame) -> None:
    real = adult_tr.select(COLS).head(1500)
    holdout = adult_tr.select(COLS).slice(1500, 1500)
    syn = _messy_synthetic(adult_tr.select(COLS).tail(3000), seed=2)
    cfg = AuditConfig(quality=False, disclosure=False, n_eval=500, n_boot=20)
    rep = run_audit(real, syn, holdout, cfg, seed=0).report
    assert rep["marginals"]["l1_mean_2way"] == pytest.approx(
        workload_error(real, syn)["l1_mean_2way"], abs=1e-12
    )
    assert rep["metrics"]["marginals.l1_mean_2way"] == rep["marginals"]["l1_mean_2way"]
    assert "marginals.l1_mean_2way" in metric_names(COLS)
