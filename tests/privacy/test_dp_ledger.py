"""The privacy ledger composes correctly; DP preprocessing keeps only released statistics; the
one-run canary audit bound behaves (0 for random guesses, large for perfect ones)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

pytest.importorskip("opacus")

from one_run_audit import epsilon_lower_bound  # noqa: E402

from tamis.errors import PrivacyError  # noqa: E402
from tamis.privacy.dp.transform import OTHER, DPTransformer  # noqa: E402
from tamis.privacy.ledger import (  # noqa: E402
    Mechanism,
    PrivacyLedger,
    gaussian_epsilon,
    validate_budget,
)


def test_gaussian_epsilon_matches_the_classic_bound() -> None:
    # the classic sigma = sqrt(2 ln(1.25/delta)) / eps calibration is valid (loose) for eps < 1
    eps, delta = 0.5, 1e-5
    sigma = math.sqrt(2 * math.log(1.25 / delta)) / eps
    assert gaussian_epsilon(1 / sigma, delta) <= eps
    assert gaussian_epsilon(1 / sigma, delta) > 0.3 * eps
    # huge budgets (audit controls) neither overflow nor lie
    assert 1e5 < gaussian_epsilon(1000.0, 1e-6) < 1e6


@pytest.mark.parametrize("accountant", ["prv", "rdp"])
def test_composition_of_histograms_is_exact_and_not_additive(accountant: str) -> None:
    ledger = PrivacyLedger(10.0, 1e-6, accountant)  # type: ignore[arg-type]
    for i in range(4):
        ledger.add(Mechanism(f"h{i}", "gaussian", 20.0))
    # 4 Gaussians with sigma 20 are exactly one Gaussian with sigma 10
    assert ledger.epsilon() == pytest.approx(gaussian_epsilon(1 / 10.0, 1e-6), rel=1e-6)
    alone = gaussian_epsilon(1 / 20.0, 1e-6)
    assert ledger.epsilon() < 4 * alone  # better than adding epsilons, as it must be


def test_prv_is_tighter_than_rdp_and_both_bound_dp_sgd() -> None:
    eps = {}
    for acc in ("prv", "rdp"):
        ledger = PrivacyLedger(3.0, 1e-5, acc)  # type: ignore[arg-type]
        ledger.add(Mechanism("h", "gaussian", 30.0))
        ledger.add(Mechanism("sgd", "subsampled_gaussian", 1.0, 0.05, 200))
        eps[acc] = ledger.epsilon()
    assert 0 < eps["prv"] <= eps["rdp"]


def test_calibration_fits_the_target_and_threshold_deltas_are_paid() -> None:
    ledger = PrivacyLedger(1.0, 1e-6, "rdp")
    ledger.add(
        Mechanism("domain", "gaussian", ledger.calibrate_histograms(3, 0.1), delta_extra=1e-7)
    )
    sigma = ledger.calibrate_sgd(0.02, 500)
    ledger.add(Mechanism("sgd", "subsampled_gaussian", sigma, 0.02, 500))
    total = ledger.check()
    assert total["epsilon"] <= 1.0 and total["epsilon"] > 0.95
    assert total["delta_accountant"] == pytest.approx(1e-6 - 1e-7)
    # a little less noise breaks the target, and check() refuses it
    ledger.mechanisms[-1].noise_multiplier = 0.8 * sigma
    with pytest.raises(PrivacyError, match="exceeds the target"):
        ledger.check()


def test_budget_validation() -> None:
    assert validate_budget(1.0, None, 1000) < 1 / 1000
    with pytest.raises(PrivacyError):
        validate_budget(math.inf, None, 1000)
    with pytest.raises(PrivacyError, match="1/n"):
        validate_budget(1.0, 1e-3, 1000)


def _frame(n: int = 5000) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, 10.0, n)
    x[rng.random(n) < 0.1] = np.nan
    cats = rng.choice(["a", "b", "c", "rare"], n, p=[0.5, 0.3, 0.1995, 0.0005])
    return pl.DataFrame({"x": pl.Series(x).fill_nan(None), "c": cats.tolist()})


def test_transformer_learns_everything_with_dp_and_round_trips() -> None:
    df = _frame()
    ledger = PrivacyLedger(3.0, 1e-6)
    tr = DPTransformer.fit(
        df,
        {},
        ledger,
        sigma=5.0,
        conditional="noisy",
        n_modes=5,
        rng=np.random.default_rng(0),
        threshold_delta=1e-7,
    )
    assert [m.name for m in ledger.mechanisms] == ["bounds:x", "modes:x", "domain:c"]
    (xc,), (cc,) = tr.continuous, tr.categorical
    assert xc.has_null and xc.edges[0] <= 1.0 and xc.edges[-1] >= 64
    # a category held by a handful of rows is not released; it becomes (other)
    assert "rare" not in cc.categories and OTHER in cc.categories
    assert abs(sum(cc.freqs) - 1) < 1e-9 and cc.freqs[cc.categories.index("a")] == pytest.approx(
        0.5, abs=0.02
    )
    enc, idx = tr.transform(df)
    assert enc.shape == (df.height, tr.dim) and idx.shape == (df.height, 1)
    back = tr.inverse(enc)
    x, y = df["x"].to_numpy(), back["x"].to_numpy()
    ok = ~np.isnan(x)
    assert np.isnan(y[~ok]).all()
    assert np.allclose(np.clip(x[ok], xc.edges[0], xc.edges[-1]), y[ok], atol=1e-3)
    assert (
        back["c"].to_numpy()[df["c"].to_numpy() != "rare"]
        == df["c"].to_numpy()[df["c"].to_numpy() != "rare"]
    ).all()
    # the transformer serialises to plain JSON-able values and holds no row
    restored = DPTransformer.from_dict(tr.to_dict())
    assert restored.to_dict() == tr.to_dict()


def test_audit_bound_is_zero_for_chance_and_large_for_perfect_guesses() -> None:
    rng = np.random.default_rng(0)
    member = rng.random(2000) < 0.5
    assert epsilon_lower_bound(rng.random(2000), member, k=200)["epsilon_lower_bound"] < 0.3
    perfect = epsilon_lower_bound(member.astype(float) + 0.01 * rng.random(2000), member, k=200)
    assert perfect["correct"] == 400 and perfect["epsilon_lower_bound"] > 3.0
