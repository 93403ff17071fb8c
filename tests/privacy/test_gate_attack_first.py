"""The attack-first gate (issue 17): `mia.worst` with CIs, per-record risk, checked against
independent computations (statsmodels, brute-force DeLong, scikit-learn)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.neighbors import NearestNeighbors
from statsmodels.stats.proportion import proportion_confint

from tamis.errors import SpecError
from tamis.privacy.audit import AuditConfig, run_audit
from tamis.privacy.audit.encode import Encoder
from tamis.privacy.audit.gate import check_threshold_names, evaluate_gate, parse_policy
from tamis.privacy.audit.mia import worst_case
from tamis.privacy.audit.stats import clopper_pearson, delong, delong_ci, tpr_at_fpr_counts

FAST = {"quality": False, "disclosure": False, "pii_scan": False, "n_eval": 1000, "n_boot": 0}


@pytest.mark.parametrize(("k", "n"), [(0, 50), (1, 1000), (2, 2000), (37, 200), (200, 200)])
@pytest.mark.parametrize("level", [0.95, 0.99, 1 - 0.05 / 3])
def test_clopper_pearson_matches_statsmodels(k: int, n: int, level: float) -> None:
    lo, hi = proportion_confint(k, n, alpha=1 - level, method="beta")
    ours = clopper_pearson(k, n, level)
    assert ours == pytest.approx((lo, hi), abs=1e-10)


def _brute_delong(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """DeLong's variance from the pairwise kernel psi(x, y) = 1, 1/2, 0 (O(n^2), no ranks)."""
    psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    var = v10.var(ddof=1) / len(x) + v01.var(ddof=1) / len(y)
    return float(psi.mean()), float(np.sqrt(var))


def test_delong_matches_brute_force_and_sklearn() -> None:
    rng = np.random.default_rng(0)
    for n1, n0, shift in ((300, 400, 0.0), (250, 250, 0.8), (100, 500, 2.0)):
        # rounded scores: many ties, which DeLong counts half
        x = np.round(rng.normal(shift, 1, n1), 1)
        y = np.round(rng.normal(0, 1, n0), 1)
        a, se = delong(x, y)
        ba, bse = _brute_delong(x, y)
        assert a == pytest.approx(ba, abs=1e-12) and se == pytest.approx(bse, rel=1e-9)
        labels = np.r_[np.ones(n1), np.zeros(n0)]
        assert a == pytest.approx(roc_auc_score(labels, np.r_[x, y]), abs=1e-12)


def test_delong_interval_covers_the_true_auc() -> None:
    # binormal scores with a known AUC: Phi(shift / sqrt(2))
    from scipy.stats import norm

    rng = np.random.default_rng(1)
    shift, true_auc = 0.5, float(norm.cdf(0.5 / np.sqrt(2)))
    hits = 0
    for _ in range(400):
        _, lo, hi = delong_ci(rng.normal(shift, 1, 150), rng.normal(0, 1, 150), 0.95)
        hits += lo <= true_auc <= hi
    assert 0.92 <= hits / 400 <= 0.98


def test_tpr_at_fpr_counts_matches_sklearn_roc() -> None:
    rng = np.random.default_rng(2)
    x, y = np.round(rng.normal(1, 1, 2000), 2), np.round(rng.normal(0, 1, 2000), 2)
    labels = np.r_[np.ones(2000), np.zeros(2000)]
    fpr, tpr, thr = roc_curve(labels, np.r_[x, y], drop_intermediate=False)
    for target in (0.01, 0.001):
        tp, fp, t = tpr_at_fpr_counts(x, y, target)
        ok = fpr <= target
        j = np.flatnonzero(ok)[np.argmax(tpr[ok])]
        assert tp == round(tpr[j] * 2000) and fp == round(fpr[j] * 2000)
        assert t == thr[j] and (x >= t).sum() == tp and (y >= t).sum() == fp


def test_worst_case_is_the_max_with_bonferroni_intervals() -> None:
    rng = np.random.default_rng(3)
    scores = {
        "distance": (rng.normal(0.2, 1, 800), rng.normal(0, 1, 800)),
        "domias": (rng.normal(0.6, 1, 800), rng.normal(0, 1, 800)),
        "shadow": (np.r_[rng.normal(0, 1, 760), rng.normal(6, 0.1, 40)], rng.normal(0, 1, 800)),
    }
    w = worst_case(scores, level=0.95)
    per_level = 1 - 0.05 / 3
    assert w["per_attack_level"] == pytest.approx(per_level)
    z = 2.3939797998185104  # scipy.stats.norm.ppf(1 - 0.05 / 6)
    aucs, highs, lows = {}, {}, {}
    for name, (x, y) in scores.items():
        a, se = _brute_delong(x, y)
        aucs[name], lows[name], highs[name] = a, max(0, a - z * se), min(1, a + z * se)
    assert w["auc"] == pytest.approx(max(aucs.values()))
    assert w["auc_attack"] == max(aucs, key=aucs.__getitem__) == "domias"
    assert w["auc_ci_high"] == pytest.approx(max(highs.values()))
    assert w["auc_ci_low"] == pytest.approx(max(lows.values()))
    # the shadow scores single out 40 members above every non-member: it wins at low FPR
    assert w["tpr_at_fpr_0.001_attack"] == "shadow" == w["strongest"]
    tp = w["per_attack"]["shadow"]["tpr_at_fpr_0.001_tp"]
    assert tp >= 40 and w["tpr_at_fpr_0.001"] == tp / 800
    cps = [
        proportion_confint(w["per_attack"][n]["tpr_at_fpr_0.001_tp"], 800, 1 - per_level, "beta")
        for n in scores
    ]
    assert w["tpr_at_fpr_0.001_ci_high"] == pytest.approx(max(c[1] for c in cps))
    assert w["tpr_at_fpr_0.001_ci_low"] == pytest.approx(max(c[0] for c in cps))


def test_policy_names_worst_figures_and_catches_typos() -> None:
    cols = ["age", "income"]
    good = parse_policy(
        {
            "thresholds": {
                "mia.worst.auc": {"max": 0.6, "bound": "ci_high"},
                "mia.worst.tpr_at_fpr_0.001": {"max": 0.01, "bound": "ci_high"},
                "mia.marginal.auc": {"max": 0.6},
                "record_risk.outlier_share_top_k": {"max": 0.5},
            }
        }
    )
    check_threshold_names(good, cols, "policy.yaml")
    bad = parse_policy({"thresholds": {"mia.worts.auc": {"max": 0.6, "bound": "ci_high"}}})
    with pytest.raises(SpecError, match="unknown figure 'mia.worts.auc'") as e:
        check_threshold_names(bad, cols, "policy.yaml")
    assert "mia.worst.auc" in str(e.value.fix)


def test_copy_is_caught_and_an_independent_sample_passes(adult_tr: pl.DataFrame) -> None:
    pool = adult_tr.sample(fraction=1.0, shuffle=True, seed=7)
    train, other, holdout = pool[:4000], pool[4000:8000], pool[8000:12000]
    policy = parse_policy({"thresholds": {"mia.worst.auc": {"max": 0.6, "bound": "ci_high"}}})
    cfg = AuditConfig(**FAST)
    copy = run_audit(train, train, holdout, cfg).report
    assert copy["mia"]["worst"]["auc_ci_low"] > 0.9
    assert not evaluate_gate(copy["metrics"], policy)["passed"]
    indep = run_audit(train, other, holdout, cfg).report
    w = indep["mia"]["worst"]
    assert w["auc_ci_low"] <= 0.5 <= w["auc_ci_high"] < 0.6, w
    assert evaluate_gate(indep["metrics"], policy)["passed"]
    assert set(w["attacks"]) <= set(indep["mia"])
    assert w["auc"] == pytest.approx(max(indep["mia"][a]["auc"] for a in w["attacks"]), abs=1e-12)


def test_record_risk_lists_the_copied_outliers(adult_tr: pl.DataFrame) -> None:
    pool = adult_tr.sample(fraction=1.0, shuffle=True, seed=11)
    train, holdout = pool[:3000], pool[3000:6000]
    enc = Encoder.fit(train)
    x = enc.transform(train)
    # independent outlier flags: distance to the nearest *other* training record (sklearn)
    d, _ = NearestNeighbors(n_neighbors=2).fit(x).kneighbors(x)
    d_own = d[:, 1]
    cut = np.quantile(d_own, 0.95)
    outliers = train.filter(pl.Series(d_own >= cut))
    # a leaky synthesizer: an independent real sample plus copies of 30 outlying records
    leaked = outliers.head(30)
    synthetic = pl.concat([pool[6000:9000], leaked])
    cfg = AuditConfig(**{**FAST, "n_eval": 1500}, record_risk_top_k=30, record_risk_values=True)
    rep = run_audit(train, synthetic, holdout, cfg).report
    rr = rep["record_risk"]
    assert rr["attack"] == rep["mia"]["worst"]["strongest"]
    assert rr["n_scored"] == 3000 and rr["outlier_share_all"] == pytest.approx(
        float((d_own >= cut).mean()), abs=1e-9
    )
    assert rr["outlier_distance"] == pytest.approx(float(cut), rel=1e-4)
    listed = pl.DataFrame([e["record"] for e in rr["top"]], schema=train.schema)
    hit = listed.join(leaked, on=train.columns, how="semi", nulls_equal=True).height
    assert hit >= 25, hit  # the copied records are the most exposed
    assert rr["outlier_share_top_k"] >= 0.8 > 0.1 >= rr["outlier_share_all"]
    for e in rr["top"]:
        # the row id points at the record in the input as given
        assert train.row(e["real_row"], named=True) == e["record"]
        assert e["outlier"] == bool(d_own[e["real_row"]] >= cut - 1e-5)


def test_record_risk_ties_never_decide_the_outlier_share(adult_tr: pl.DataFrame) -> None:
    from tamis.privacy.audit.exposure import record_risk

    rows = adult_tr[:800]
    x = Encoder.fit(rows).transform(rows)
    # a copy makes every training record equally exposed (distance 0 for all)
    rr = record_risk(
        rows,
        np.arange(800),
        x,
        lambda f: np.zeros(f.height),
        np.full(500, -1.0),
        attack="distance",
        top_k=20,
    )
    assert rr["n_at_least_kth_score"] == 800 and len(rr["top"]) == 20
    assert rr["outlier_share_top_k"] == rr["outlier_share_all"]
    assert all(e["nonmember_share_at_or_above"] == 0.0 for e in rr["top"])
