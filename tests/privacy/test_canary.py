"""Empirical epsilon by a canary audit (issue 17): the bound against an independent computation,
below the claim for DP mechanisms, clearly higher for a synthesizer that copies its rows."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from statsmodels.stats.proportion import proportion_confint

from tamis.errors import DataError
from tamis.privacy.audit.canary import canary_audit, cp_upper, epsilon_bound, make_canary

DOMAIN = {"a": ["x", "y", "z"], "b": ["u", "v", "w", "q"]}


def laplace_histogram(epsilon: float, rows: int = 200):  # type: ignore[no-untyped-def]
    """A cheap pure epsilon-DP synthesizer: Laplace(1/epsilon) noise on every cell of the
    public domain's histogram (add/remove sensitivity 1), rows sampled from the clipped result."""
    cells = [(a, b) for a in DOMAIN["a"] for b in DOMAIN["b"]]

    def fit(df: pl.DataFrame, seed: int) -> pl.DataFrame:
        rng = np.random.default_rng(seed)
        c = {
            (r["a"], r["b"]): r["len"] for r in df.group_by(["a", "b"]).len().iter_rows(named=True)
        }
        noisy = np.array([c.get(cell, 0) for cell in cells], float)
        noisy += rng.laplace(0, 1 / epsilon, len(cells))
        p = np.clip(noisy, 0, None)
        p = p / p.sum()
        idx = rng.choice(len(cells), rows, p=p)
        return pl.DataFrame({"a": [cells[i][0] for i in idx], "b": [cells[i][1] for i in idx]})

    return fit


def _data() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    return pl.DataFrame({"a": rng.choice(["x", "y"], 200), "b": rng.choice(["u", "v", "w"], 200)})


CANARY = pl.DataFrame({"a": ["z"], "b": ["q"]})


@pytest.mark.parametrize(("k", "n"), [(0, 100), (3, 100), (41, 250), (250, 250)])
def test_cp_upper_and_bound_match_statsmodels(k: int, n: int) -> None:
    level = 0.975
    # a one-sided upper bound at `level` is the upper end of the two-sided interval at 2*level-1
    want = proportion_confint(k, n, alpha=2 * (1 - level), method="beta")[1] if k < n else 1.0
    assert cp_upper(k, n, level) == pytest.approx(want, abs=1e-10)
    fp, fn = 7, 30
    a = proportion_confint(fp, 250, alpha=0.05, method="beta")[1]
    b = proportion_confint(fn, 250, alpha=0.05, method="beta")[1]
    want_eps = max(math.log((1 - 1e-5 - a) / b), math.log((1 - 1e-5 - b) / a), 0.0)
    assert epsilon_bound(fp, fn, 250, 250, 1e-5, level) == pytest.approx(want_eps, rel=1e-9)


def test_dp_mechanism_stays_below_its_claim_and_a_copy_does_not() -> None:
    data = _data()
    copy = canary_audit(lambda df, seed: df, data, CANARY, trials=300, score="exact")
    lap = canary_audit(
        laplace_histogram(1.0), data, CANARY, trials=300, score="exact", claimed_epsilon=1.0
    )
    assert lap["below_claim"] and 0 <= lap["epsilon_lower_bound"] < 1.0
    assert copy["false_positives"] == copy["false_negatives"] == 0
    # the copy reaches what this many trials can prove at all
    assert copy["epsilon_lower_bound"] == copy["max_provable_epsilon"] > 3.5
    assert copy["epsilon_lower_bound"] > lap["epsilon_lower_bound"] + 2.5
    assert lap["trials_per_world"] == 300 and lap["fits"] == 600
    assert lap["evaluation_trials"] + lap["calibration_trials"] == 300
    # a weaker guarantee shows: the audit has power
    lap4 = canary_audit(laplace_histogram(4.0), data, CANARY, trials=300, score="exact")
    assert 0.5 < lap4["epsilon_lower_bound"] < 4.0


def test_bound_is_tight_and_valid_on_randomized_response() -> None:
    """Randomized response (eps-DP, with the tightest trade-off) releases the canary with
    probability e^eps/(1+e^eps) when it is in, 1/(1+e^eps) when out: over 20 audits the bound is
    below eps every time (95% confidence each) and reaches a good part of it."""
    eps = 1.0
    keep = math.exp(eps) / (1 + math.exp(eps))
    data = pl.DataFrame({"a": ["x"] * 10, "b": ["u"] * 10})

    def fit(df: pl.DataFrame, seed: int) -> pl.DataFrame:
        has = df.height > 10
        shown = has if np.random.default_rng(seed).random() < keep else not has
        return pl.DataFrame({"a": ["z" if shown else "x"], "b": ["q" if shown else "u"]})

    def shown(canary: pl.DataFrame, synthetic: pl.DataFrame) -> float:
        return float(synthetic["a"][0] == "z")

    bounds = [
        canary_audit(fit, data, CANARY, trials=1000, score=shown, seed=s)["epsilon_lower_bound"]
        for s in range(0, 20000, 2000)
    ]
    assert max(bounds) < eps and min(bounds) > 0.6 * eps


def test_distance_and_marginal_scores_and_the_default_canary() -> None:
    data = _data()
    canary = make_canary(data)
    # each column's least frequent value
    for col in ("a", "b"):
        counts = data[col].value_counts(name="n").sort(["n", col])
        assert canary[col][0] == counts[col][0]
    for score in ("distance", "marginal"):
        r = canary_audit(lambda df, seed: df, data, CANARY, trials=40, score=score)
        assert r["false_positives"] == r["false_negatives"] == 0, score


def test_bad_settings_are_clear_errors() -> None:
    data = _data()
    with pytest.raises(DataError, match="at least 4 trials"):
        canary_audit(lambda df, s: df, data, CANARY, trials=2)
    with pytest.raises(DataError, match="one row"):
        canary_audit(lambda df, s: df, data, pl.concat([CANARY, CANARY]), trials=10)
    with pytest.raises(DataError, match="unknown canary score"):
        canary_audit(lambda df, s: df, data, CANARY, trials=10, score="nearest")


@pytest.mark.slow
def test_dp_ctgan_stays_below_its_claim() -> None:
    pytest.importorskip("opacus")
    from tamis.privacy.dp.ctgan import DPCTGAN, DPCTGANConfig

    tiny = dict(
        epochs=1,
        batch_size=60,
        embedding_dim=8,
        generator_dim=[16],
        discriminator_dim=[16],
        n_modes=3,
        threads=1,
        accountant="rdp",
        epsilon=1.0,
    )
    rng = np.random.default_rng(0)
    data = pl.DataFrame(
        {"age": rng.integers(18, 80, 300), "cat": rng.choice(["a", "b", "c"], 300).tolist()}
    )
    canary = pl.DataFrame({"age": [99], "cat": ["c"]})  # no training row is like it

    def fit(df: pl.DataFrame, seed: int) -> pl.DataFrame:
        return DPCTGAN(DPCTGANConfig(**tiny), seed=seed).fit(df).sample(300, seed=seed)

    r = canary_audit(fit, data, canary, trials=40, score="distance", claimed_epsilon=1.0)
    assert r["below_claim"], r
    copy = canary_audit(lambda df, seed: df, data, canary, trials=40, score="distance")
    assert copy["epsilon_lower_bound"] > r["epsilon_lower_bound"] + 1.0


def test_cli_reports_the_bound_and_fails_a_broken_claim(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from typer.testing import CliRunner

    from tamis.cli import app

    path = tmp_path / "small.csv"
    _data().write_csv(path)
    args = ["audit-canary", str(path), "--synthesizer", "copy", "--trials", "100"]
    args += ["--canary", '{"a": "z", "b": "q"}', "--score", "exact", "--store", str(tmp_path / "s")]
    res = CliRunner().invoke(app, [*args, "--claimed-epsilon", "1", "--json"])
    assert res.exit_code == 3, res.output
    doc = json.loads(res.stdout)
    want = epsilon_bound(0, 0, 50, 50, 1e-5, 0.975)
    assert doc["epsilon_lower_bound"] == pytest.approx(want) and doc["below_claim"] is False
    assert doc["trials_per_world"] == 100 and doc["canary"] == {"a": "z", "b": "q"}
    # a claim above what the copy can be shown to exceed passes (exit 0), and says so
    res = CliRunner().invoke(app, [*args, "--claimed-epsilon", "10"])
    assert res.exit_code == 0 and "below it" in res.output
    # errors name the option, never a traceback
    res = CliRunner().invoke(app, [*args[:2], "--synthesizer", "nope", "--trials", "10"])
    assert res.exit_code == 1 and "nope" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, [*args, "--params", "[1, 2]"])
    assert res.exit_code == 1 and "params must be a mapping" in res.output


@pytest.mark.slow
def test_dp_mst_below_its_claim_and_caught_without_noise(adult_tr: pl.DataFrame) -> None:
    from tamis.pipelines.registry import get_step_type
    from tamis.pipelines.runner import run_step

    try:
        get_step_type("dp_mst")
        from tamis.privacy.dp_marginal.adult_meta import ADULT_COLUMNS
    except Exception:  # noqa: BLE001
        pytest.skip("dp_mst is not available")
    data = adult_tr.head(500)

    def mst(epsilon: float):  # type: ignore[no-untyped-def]
        params = {"epsilon": epsilon, "estimator": "tree", "columns": ADULT_COLUMNS}
        return lambda df, seed: run_step("dp_mst", {"input": df}, params, seed=seed).frames["data"]

    r1 = canary_audit(mst(1.0), data, trials=100, score="marginal", claimed_epsilon=1.0)
    assert r1["below_claim"], r1
    # without noise the marginal score still errs often (sampling noise of 500 synthetic rows): with
    # 100 trials per world the bound fell below 1.0 in 2 of 8 runs; 200 gave 1.68-2.32 in 3 runs
    r_big = canary_audit(mst(1000.0), data, trials=200, score="marginal")
    assert r_big["epsilon_lower_bound"] > 1.0 > r1["epsilon_lower_bound"]
