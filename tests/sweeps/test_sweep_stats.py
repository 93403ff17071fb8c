"""Sweep statistics agree with scipy computed independently."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tamis.sweeps.stats import bootstrap_mean, paired_delta, summarize, summary_table


@pytest.mark.parametrize("n", [2, 3, 5, 12])
def test_summary_ci_matches_scipy_t_interval(n: int) -> None:
    rng = np.random.default_rng(n)
    values = rng.normal(0.8, 0.05, size=n)
    out = summarize(values.tolist())
    lo, hi = stats.t.interval(0.95, n - 1, loc=values.mean(), scale=stats.sem(values))
    assert out["n"] == n
    assert out["mean"] == pytest.approx(values.mean(), abs=1e-12)
    assert out["sd"] == pytest.approx(values.std(ddof=1), abs=1e-12)
    assert out["ci_low"] == pytest.approx(lo, abs=1e-12)
    assert out["ci_high"] == pytest.approx(hi, abs=1e-12)


def test_summary_handles_missing_and_single_values() -> None:
    assert summarize([])["mean"] is None
    one = summarize([0.7, None, float("nan")])
    assert one["n"] == 1 and one["mean"] == 0.7 and one["ci_low"] is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paired_delta_matches_scipy_ttest_rel(seed: int) -> None:
    rng = np.random.default_rng(seed)
    base = rng.normal(0.9, 0.02, size=6)
    version = base - 0.01 + rng.normal(0, 0.01, size=6)
    out = paired_delta(dict(enumerate(version)), dict(enumerate(base)), n_boot=20_000, seed=3)
    ref = stats.ttest_rel(version, base)
    assert out["n_pairs"] == 6
    assert out["delta"] == pytest.approx((version - base).mean(), abs=1e-12)
    assert out["p_ttest"] == pytest.approx(ref.pvalue, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert out["delta_ci_low"] == pytest.approx(ci.low, abs=1e-12)
    assert out["delta_ci_high"] == pytest.approx(ci.high, abs=1e-12)
    # the percentile bootstrap agrees with scipy's own percentile bootstrap (different draws)
    sp = stats.bootstrap(
        (version - base,),
        np.mean,
        n_resamples=20_000,
        method="percentile",
        rng=np.random.default_rng(7),
    )
    width = ci.high - ci.low
    assert out["boot_ci_low"] == pytest.approx(sp.confidence_interval.low, abs=0.05 * width)
    assert out["boot_ci_high"] == pytest.approx(sp.confidence_interval.high, abs=0.05 * width)


def test_paired_delta_pairs_by_seed_and_skips_missing() -> None:
    base = {0: 0.9, 1: 0.8, 2: 0.85, 3: 0.7}
    version = {1: 0.75, 2: 0.84, 0: 0.86, 5: 0.1}  # seed 3 missing, seed 5 has no baseline
    out = paired_delta(version, base)
    diffs = np.array([0.86 - 0.9, 0.75 - 0.8, 0.84 - 0.85])
    assert out["n_pairs"] == 3
    assert out["delta"] == pytest.approx(diffs.mean())
    assert out["p_ttest"] == pytest.approx(stats.ttest_1samp(diffs, 0.0).pvalue)


def test_bootstrap_p_value_small_for_clear_shift_and_large_for_none() -> None:
    rng = np.random.default_rng(0)
    shifted = rng.normal(-0.05, 0.01, size=8)
    assert bootstrap_mean(shifted, n_boot=5000)["p"] < 0.01
    centred = rng.normal(0.0, 0.01, size=8)
    centred -= centred.mean()
    assert bootstrap_mean(centred, n_boot=5000)["p"] > 0.5
    assert bootstrap_mean(np.zeros(5))["p"] == 1.0
    assert bootstrap_mean(np.array([-0.1, -0.2, -0.15]))["p"] is None  # too few seeds


def test_summary_table_rows_and_baseline() -> None:
    per_seed = {
        "a": {"acc": {0: 0.9, 1: 0.91, 2: 0.92}},
        "b": {"acc": {0: 0.8, 1: 0.82, 2: 0.81}},
    }
    rows = summary_table(per_seed, metrics=["acc"], baseline="a", n_boot=1000)
    assert [r["version"] for r in rows] == ["a", "b"]
    assert "delta" not in rows[0]
    assert rows[1]["delta"] == pytest.approx(np.mean([-0.1, -0.09, -0.11]))
    # without per-row predictions: the paired t-test over seeds, said so
    assert rows[1]["p_method"] == "paired t-test over seeds"
    assert rows[1]["p"] == pytest.approx(
        stats.ttest_rel([0.8, 0.82, 0.81], [0.9, 0.91, 0.92]).pvalue
    )


def test_t_intervals_of_bounded_figures_are_clipped() -> None:
    """Figures without per-row predictions keep the t interval over seeds, within their bounds
    (an AUC near 1 over 3 seeds had a CI reaching past 1.0)."""
    per_seed = {"a": {"mia_auc": {0: 0.99, 1: 1.0, 2: 1.0}, "margin": {0: 1.0, 1: 2.0, 2: 9.0}}}
    rows = summary_table(per_seed, metrics=["mia_auc", "margin"], baseline=None)
    auc, margin = rows
    lo, hi = stats.t.interval(0.95, 2, loc=np.mean([0.99, 1, 1]), scale=stats.sem([0.99, 1, 1]))
    assert hi > 1.0 and auc["ci_high"] == 1.0 and auc["ci_low"] == pytest.approx(lo)
    assert auc["ci_method"] == "t: seeds"
    assert margin["ci_low"] < 0  # unbounded: not clipped
