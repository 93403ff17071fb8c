"""Attack-sanity bars on UCI Adult (6k-row subsets of adult.data; adult.test as holdout).

- a "synthesizer" that copies its training rows: every membership attack reaches AUC >= 0.9;
- an independent real sample as "synthetic" data: the AUC CI of each attack contains 0.5.
"""

from __future__ import annotations

import polars as pl
import pytest

from tamis.privacy.audit import AuditConfig, run_audit
from tamis.privacy.audit.release import make_synthesize

FAST = {"quality": False, "disclosure": False, "pii_scan": False, "n_eval": 1000, "n_boot": 100}


def test_copying_synthesizer_is_caught(adult_tr: pl.DataFrame, adult_te: pl.DataFrame) -> None:
    train = adult_tr.sample(6000, seed=1)
    synthetic = train  # the "synthesizer" returns its training rows
    cfg = AuditConfig(**FAST, shadow={"count": 2, "synthesizer": "copy"})
    holdout = adult_te.sample(6000, seed=2)
    res = run_audit(train, synthetic, holdout, cfg, seed=0, synthesize=make_synthesize("copy", 1))
    mia = res.report["mia"]
    assert set(mia) == {"distance", "domias", "marginal", "shadow", "worst"}
    assert mia["worst"]["auc_ci_low"] >= 0.9 and mia["worst"]["attacks"] == [
        "distance",
        "domias",
        "marginal",
        "shadow",
    ]
    # the marginal attack reads cell counts, not neighbourhoods: one copied row among 6,000
    # moves its cells little (see test_marginal_attack_* for where it is the strongest)
    print("marginal AUC against a copy:", mia.pop("marginal")["auc"])
    for name, r in mia.items():
        assert r["auc"] >= 0.9, (name, r["auc"])
        assert r["tpr_at_fpr_0.01"] >= 0.5, name
    assert res.report["exact_match"]["rate"] == 1.0
    assert res.report["dcr"]["closer_to_train_share"] > 0.7


def test_independent_sample_is_not_flagged(adult_tr: pl.DataFrame) -> None:
    # one real pool split at random into train, "synthetic" and holdout, so the three are
    # exchangeable (with adult.test as holdout the distance attack reads 0.50-0.52 across
    # shuffles: the two files are not perfectly exchangeable)
    pool = adult_tr.sample(fraction=1.0, shuffle=True, seed=7)
    train, synthetic, holdout = pool[:6000], pool[6000:12000], pool[12000:18000]
    cfg = AuditConfig(**FAST, shadow={"count": 2, "synthesizer": "copy"})
    res = run_audit(train, synthetic, holdout, cfg, seed=0, synthesize=make_synthesize("copy", 1))
    for name, r in res.report["mia"].items():
        if name == "worst":  # the largest of the AUCs, whose CI bounds them all at once
            assert r["auc_ci_low"] <= 0.5 <= r["auc_ci_high"] < 0.6, r
            continue
        assert r["auc_ci_low"] <= 0.5 <= r["auc_ci_high"], (name, r)
        assert abs(r["auc"] - 0.5) < 0.05
    share = res.report["dcr"]
    assert share["closer_to_train_share_ci_low"] <= 0.5 <= share["closer_to_train_share_ci_high"]
    assert res.report["exact_match"]["rate"] < 0.01


def test_mia_roc_and_ci_fields(adult_tr: pl.DataFrame, adult_te: pl.DataFrame) -> None:
    cfg = AuditConfig(**{**FAST, "n_eval": 300, "n_boot": 50})
    res = run_audit(adult_tr.head(3000), adult_tr.head(3000), adult_te.head(3000), cfg)
    r = res.report["mia"]["distance"]
    assert r["n_members"] == r["n_nonmembers"] == 300
    assert r["roc"]["fpr"][0] == 0.0 and r["roc"]["tpr"][-1] == 1.0
    assert r["auc_ci_low"] <= r["auc"] <= r["auc_ci_high"]
    m = res.report["metrics"]
    assert "mia.distance.tpr_at_fpr_0.001" in m and "dcr.closer_to_train_share" in m


@pytest.mark.parametrize("rows", [10, 49])
def test_tiny_inputs_refused(rows: int, adult_tr: pl.DataFrame) -> None:
    from tamis.errors import DataError

    with pytest.raises(DataError, match="at least 50"):
        run_audit(adult_tr.head(1000), adult_tr.head(rows), adult_tr.tail(1000))


def test_odd_columns(adult_tr: pl.DataFrame) -> None:
    from tamis.errors import DataError

    base = adult_tr.head(600).with_columns(
        pl.lit("same").alias("constant"), pl.lit(None, dtype=pl.Utf8).alias("empty")
    )
    cfg = AuditConfig(**{**FAST, "n_eval": 100})
    # constant and all-null columns are audited like any other (they carry no signal)
    res = run_audit(base, base[:300], base[300:], cfg)
    assert res.report["exact_match"]["rate"] == 1.0
    listy = base.with_columns(pl.concat_list("age", "age").alias("lst"))
    with pytest.raises(DataError, match="unsupported column type") as e:
        run_audit(listy, listy, listy, cfg)
    assert e.value.column == "lst"
    with pytest.raises(DataError, match="lacks columns") as e:
        run_audit(base, base.drop("age"), base, cfg)
    assert e.value.column == "age"
