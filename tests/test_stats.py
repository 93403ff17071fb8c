"""tamis.stats against independent references (statsmodels, scipy) on real data."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from tamis.stats import (
    Q95,
    bootstrap_ci,
    bootstrap_indices,
    bootstrap_mean,
    percentile_interval,
    t_half_width,
    t_interval,
    tails,
    wilson,
)

Z95 = float(sps.norm.ppf(0.975))


@pytest.fixture(scope="module")
def fair_np(fair: pl.DataFrame) -> dict[str, np.ndarray]:
    return {c: fair.get_column(c).to_numpy().astype(float) for c in fair.columns}


def test_wilson_matches_statsmodels_on_real_proportions(adult_train_clean: pl.DataFrame) -> None:
    rich = adult_train_clean.get_column("income").str.contains(">50K").to_numpy()
    for n in (1, 7, 50, 500, rich.size):
        k = int(rich[:n].sum())
        lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert wilson(k, n, z=Z95) == pytest.approx((lo, hi), abs=1e-12)
        # the default z=1.96 is the rounded normal quantile: agrees to 1e-4
        assert wilson(k, n) == pytest.approx((lo, hi), abs=1e-4)
    for k, n in ((0, 20), (20, 20)):  # the ends stay inside [0, 1]
        lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert wilson(k, n, z=Z95) == pytest.approx((lo, hi), abs=1e-12)
    assert wilson(0, 0) == (0.0, 1.0)
    nan = float("nan")
    assert np.isnan(wilson(0, 0, empty=(nan, nan))).all()


def test_t_interval_matches_scipy(fair_np: dict[str, np.ndarray]) -> None:
    for col in ("rate_marriage", "age", "affairs"):
        for n in (2, 5, 30, fair_np[col].size):
            x = fair_np[col][np.linspace(0, fair_np[col].size - 1, n).astype(int)]
            assert x.std() > 0  # scipy's reference is NaN for a constant sample
            ref = sps.t.interval(0.95, n - 1, loc=x.mean(), scale=sps.sem(x))
            assert t_interval(x) == pytest.approx(ref, rel=1e-12, abs=1e-12)
            ref90 = sps.t.interval(0.9, n - 1, loc=x.mean(), scale=sps.sem(x))
            assert t_interval(x, 0.9) == pytest.approx(ref90, rel=1e-12, abs=1e-12)
    assert t_half_width(2.0, 10) == pytest.approx(sps.t.ppf(0.975, 9) * 2.0 / np.sqrt(10))
    assert np.isnan(t_interval([1.0])).all()


def test_bootstrap_indices_is_one_vectorized_draw() -> None:
    """Replicate by replicate draws the same stream as one (n_boot, n) call: the copies that
    drew either way keep their figures."""
    a = np.stack(list(bootstrap_indices(37, 50, seed=3)))
    b = np.random.default_rng(3).integers(0, 37, size=(50, 37))
    assert (a == b).all()


def test_bootstrap_ci_matches_scipy_percentile(fair_np: dict[str, np.ndarray]) -> None:
    x = fair_np["rate_marriage"][:800]
    lo, hi = bootstrap_ci(x, np.mean, n_boot=4000, seed=0)
    ref = sps.bootstrap(
        (x,), np.mean, n_resamples=4000, method="percentile", random_state=1
    ).confidence_interval
    # different random draws: equal up to Monte Carlo error (a small share of the CI's width)
    width = ref.high - ref.low
    assert lo == pytest.approx(ref.low, abs=0.05 * width)
    assert hi == pytest.approx(ref.high, abs=0.05 * width)
    # and exactly the percentile interval of the replicates it drew
    boots = [x[i].mean() for i in bootstrap_indices(len(x), 4000, 0)]
    assert (lo, hi) == (float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975)))
    assert (lo, hi) == tuple(float(v) for v in np.percentile(boots, [2.5, 97.5]))


def test_bootstrap_ci_edges() -> None:
    assert np.isnan(bootstrap_ci(np.array([1.0]), np.mean)).all()
    assert np.isnan(bootstrap_ci(np.arange(5.0), np.mean, n_boot=0)).all()
    assert np.isnan(percentile_interval([np.nan, np.inf], finite_only=True)).all()
    assert percentile_interval([np.nan, 1.0, 2.0], finite_only=True) == pytest.approx(
        tuple(np.quantile([1.0, 2.0], Q95))
    )
    assert tails(0.95) == ((1 - 0.95) / 2, 1 - (1 - 0.95) / 2)


def test_bootstrap_mean_of_paired_differences(fair_np: dict[str, np.ndarray]) -> None:
    """Paired difference of two real columns: the CI agrees with scipy's percentile bootstrap
    and the p-value is small for a real difference and large for none."""
    d = fair_np["rate_marriage"][:300] - fair_np["religious"][:300]
    out = bootstrap_mean(d, n_boot=5000, seed=0)
    ref = sps.bootstrap(
        (d,), np.mean, n_resamples=5000, method="percentile", random_state=0
    ).confidence_interval
    width = ref.high - ref.low
    assert out["ci_low"] == pytest.approx(ref.low, abs=0.05 * width)
    assert out["ci_high"] == pytest.approx(ref.high, abs=0.05 * width)
    assert out["p"] < 0.01
    centred = d - d.mean()
    assert bootstrap_mean(centred, n_boot=2000, seed=0)["p"] > 0.5
    assert bootstrap_mean(np.zeros(6), n_boot=100)["p"] == 1.0
    assert bootstrap_mean(np.ones(6), n_boot=100)["p"] == 0.0
