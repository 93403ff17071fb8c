"""The audit's `validity` section against an independent pandas computation on messy data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from tamis.privacy.audit import AuditConfig, run_audit
from tamis.privacy.audit.gate import evaluate_gate, parse_policy
from tamis.privacy.audit.validity import public_metadata

FAST = {"quality": False, "disclosure": False, "n_eval": 100, "n_boot": 0}


def _messy(real: pl.DataFrame, seed: int = 0) -> pl.DataFrame:
    """Synthetic rows as a careless generator emits them: out of range, new categories, nulls,
    NaN, text in a numeric column."""
    rng = np.random.default_rng(seed)
    syn = real.sample(fraction=1.0, shuffle=True, seed=seed)
    n = syn.height
    age = syn["age"].cast(pl.Float64).to_numpy().copy()
    age[rng.random(n) < 0.05] = 97.5  # above the real max (90) and the public bound
    age[rng.random(n) < 0.02] = -3.0
    age[rng.random(n) < 0.03] = np.nan
    fnlwgt = syn["fnlwgt"].cast(pl.Utf8).to_numpy().copy()
    fnlwgt[rng.random(n) < 0.04] = "abc"
    work = syn["workclass"].to_numpy().copy()
    work[rng.random(n) < 0.06] = "(other)"
    work[rng.random(n) < 0.01] = "Mars"
    occ = syn["occupation"].to_numpy().copy()
    occ[rng.random(n) < 0.1] = None
    return syn.with_columns(
        pl.Series("age", age),
        pl.Series("fnlwgt", fnlwgt, dtype=pl.Utf8),
        pl.Series("workclass", work, dtype=pl.Utf8),
        pl.Series("occupation", occ, dtype=pl.Utf8),
    )


def _expected(real: pd.DataFrame, syn: pd.DataFrame, bounds: dict[str, tuple[float, float]]):
    """Per column (share outside range or domain, null-rate change), computed with pandas."""
    out = {}
    for c in real.columns:
        null_change = syn[c].isna().mean() - real[c].isna().mean()
        present = syn[c][syn[c].notna()]
        if pd.api.types.is_numeric_dtype(real[c]):
            lo, hi = bounds.get(c, (real[c].min(), real[c].max()))
            x = pd.to_numeric(present, errors="coerce")
            bad = x.isna() | (x < lo) | (x > hi)
        else:
            domain = set(real[c].dropna().astype(str))
            bad = ~present.astype(str).isin(domain)
        out[c] = (float(bad.mean()) if len(present) else 0.0, float(null_change))
    return out


def test_validity_matches_pandas_on_messy_adult(adult_tr: pl.DataFrame) -> None:
    real, hold = adult_tr[:1500], adult_tr[1500:3000]
    syn = _messy(adult_tr[3000:4500])
    bounds = {"age": (17.0, 90.0), "hours-per-week": (10.0, 80.0)}
    cfg = AuditConfig(**FAST, public={c: {"bounds": list(b)} for c, b in bounds.items()})
    v = run_audit(real, syn, hold, cfg).report["validity"]
    exp = _expected(real.to_pandas(), syn.to_pandas(), bounds)
    for col, (share, null_change) in exp.items():
        e = v["columns"][col]
        got = e.get("out_of_range_share", e.get("new_category_share"))
        assert got == pytest.approx(share, abs=1e-12), col
        assert e["null_rate_change"] == pytest.approx(null_change, abs=1e-12), col
    age, work, fnl = v["columns"]["age"], v["columns"]["workclass"], v["columns"]["fnlwgt"]
    assert age["source"] == "public" and (age["low"], age["high"]) == (17.0, 90.0)
    assert age["out_of_range_share"] > 0.05 and age["null_rate_change"] > 0.02
    assert fnl["n_not_a_number"] > 0 and fnl["source"] == "real"
    assert work["new_categories"] == ["(other)", "Mars"] and work["n_new_categories"] == 2
    assert v["max_out_of_range_share"] == max(
        e["out_of_range_share"] for e in v["columns"].values() if e["kind"] == "range"
    )
    assert v["max_new_category_share"] == pytest.approx(exp["workclass"][0])
    # the independent sample of real rows is valid apart from rare categories and range edges
    clean = run_audit(real, adult_tr[3000:4500], hold, AuditConfig(**FAST)).report["validity"]
    assert clean["max_out_of_range_share"] < 0.01 and clean["max_new_category_share"] < 0.01


def test_gate_thresholds_validity(adult_tr: pl.DataFrame) -> None:
    real, hold = adult_tr[:1000], adult_tr[1000:2000]
    res = run_audit(real, _messy(adult_tr[2000:3000]), hold, AuditConfig(**FAST))
    m = res.report["metrics"]
    assert (
        m["validity.age.out_of_range_share"]
        == res.report["validity"]["columns"]["age"]["out_of_range_share"]
    )
    pol = parse_policy(
        {
            "thresholds": {
                "validity.max_out_of_range_share": {"max": 0.01},
                "validity.max_new_category_share": {"max": 0.01},
                "validity.max_null_rate_increase": {"max": 0.5},
            }
        }
    )
    gate = evaluate_gate(m, pol)
    assert {c["check"] for c in gate["failed"]} == {
        "validity.max_out_of_range_share",
        "validity.max_new_category_share",
    }


def test_public_metadata_from_a_dp_manifest() -> None:
    manifest = {
        "step": {"type": "dp_ctgan", "params": {"columns": {"age": {"bounds": [17, 90]}}}},
        "report": {"public_metadata": {"columns": {"sex": {"categories": ["F", "M"]}}}},
    }
    assert public_metadata(manifest) == {
        "age": {"bounds": [17, 90]},
        "sex": {"categories": ["F", "M"]},
    }
    assert public_metadata(None) == {} and public_metadata({"step": {"params": {}}}) == {}


def test_odd_synthetic_types_are_read_not_crashed_on() -> None:
    import datetime as dt

    from tamis.privacy.audit.validity import validity

    n = 60
    real = pl.DataFrame(
        {
            "a": list(range(n)),
            "d": [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(n)],
            "b": [i % 2 == 0 for i in range(n)],
        }
    )
    syn = pl.DataFrame(
        {
            # numbers as a categorical with text that is no number; dates as text; 0/1 booleans
            "a": pl.Series([str(i) for i in range(n - 2)] + ["999", "zz"]).cast(pl.Categorical),
            "d": ["2020-01-05"] * (n - 2) + ["2031-01-01", "not a date"],
            "b": [1] * (n - 1) + [2],
        }
    )
    cols = validity(real, syn)["columns"]
    assert cols["a"]["out_of_range_share"] == pytest.approx(2 / n)
    assert cols["a"]["n_not_a_number"] == 1
    assert cols["d"]["out_of_range_share"] == pytest.approx(2 / n)
    assert cols["b"]["new_categories"] == ["2"] and cols["b"]["n_new"] == 1
    # the whole audit takes such a frame too
    cfg = AuditConfig(**FAST, pii_scan=False)
    rep = run_audit(real, syn, real, cfg).report
    assert rep["validity"]["max_out_of_range_share"] == pytest.approx(2 / n)
