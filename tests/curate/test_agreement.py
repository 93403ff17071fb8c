"""Agreement statistics vs independent references; consensus (CROWDLAB) and gold drift."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from tamis.curate.agreement import (
    cohen_kappa_pairs,
    fleiss_kappa,
    krippendorff_alpha_nominal,
    vote_counts,
)
from tamis.curate.consensus import ConsensusConfig, consensus
from tamis.errors import DataError
from tamis.pipelines.runner import run_step

CLASSES = ["cat", "dog", "eel", "fox"]


def annotations(
    n_items: int = 300,
    per_item: int = 3,
    accuracies: list[float] | None = None,
    seed: int = 0,
    fixed_raters: bool = False,
) -> tuple[pl.DataFrame, np.ndarray]:
    """Generated annotations: each annotator is right with its accuracy, else a random class."""
    rng = np.random.default_rng(seed)
    acc = accuracies or [0.95, 0.9, 0.85, 0.8, 0.7, 0.6]
    truth = rng.integers(0, len(CLASSES), n_items)
    rows = []
    for i in range(n_items):
        raters = range(per_item) if fixed_raters else rng.choice(len(acc), per_item, replace=False)
        for a in raters:
            lab = truth[i] if rng.random() < acc[a] else rng.integers(0, len(CLASSES))
            rows.append((f"item{i}", f"w{a}", CLASSES[lab], CLASSES[truth[i]], i))
    df = pl.DataFrame(rows, schema=["item", "worker", "label", "truth", "t"], orient="row")
    return df, truth


def test_fleiss_matches_statsmodels() -> None:
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    df, _ = annotations(per_item=4, seed=1)
    counts, classes = vote_counts(df, item="item", label="label")
    assert classes == CLASSES and counts.sum() == df.height and (counts.sum(axis=1) == 4).all()
    assert fleiss_kappa(counts) == pytest.approx(sm_fleiss(counts, method="fleiss"), abs=1e-12)


def test_cohen_matches_sklearn() -> None:
    from sklearn.metrics import cohen_kappa_score

    df, _ = annotations(seed=2)
    pairs = cohen_kappa_pairs(df, item="item", annotator="worker", label="label")
    assert pairs.height == 15  # 6 annotators
    for row in pairs.iter_rows(named=True):
        a = df.filter(pl.col("worker") == row["annotator_a"]).select("item", la="label")
        b = df.filter(pl.col("worker") == row["annotator_b"]).select("item", lb="label")
        both = a.join(b, on="item")
        assert row["n_items"] == both.height
        assert row["kappa"] == pytest.approx(cohen_kappa_score(both["la"], both["lb"]), abs=1e-12)


def test_krippendorff_alpha_hand_computed_and_published() -> None:
    # 3 units x 2 coders: (a,a) (a,b) (b,b). Coincidences: o_aa=2, o_ab=o_ba=1, o_bb=2;
    # n_a=n_b=3, n=6. alpha = 1 - (n-1) * o_ab / (n_a * n_b) = 1 - 5/9 = 4/9.
    assert krippendorff_alpha_nominal(np.array([[2, 0], [1, 1], [0, 2]])) == pytest.approx(4 / 9)
    # perfect agreement -> 1; a unit with one value is not pairable and is ignored
    assert krippendorff_alpha_nominal(np.array([[2, 0], [0, 3], [1, 0]])) == pytest.approx(1.0)
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", 4 coders x 12 units
    # with missing values: nominal alpha = 0.743.
    coders = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    rows = [(u, c, v) for c, vals in enumerate(coders) for u, v in enumerate(vals) if v is not None]
    df = pl.DataFrame(rows, schema=["item", "coder", "value"], orient="row")
    counts, _ = vote_counts(df, item="item", label="value")
    assert krippendorff_alpha_nominal(counts) == pytest.approx(0.743, abs=5e-4)


def test_consensus_crowdlab_finds_the_bad_annotator_and_truth() -> None:
    df, truth = annotations(n_items=400, accuracies=[0.9, 0.9, 0.85, 0.85, 0.25], seed=3)
    out, rep = consensus(
        df.drop("truth"), ConsensusConfig(item="item", annotator="worker", label="label")
    )
    assert out.height == 400 and out["item"].to_list() == [f"item{i}" for i in range(400)]
    assert (out["label"] == pl.Series([CLASSES[t] for t in truth])).mean() > 0.9
    ann = rep["tables"]["annotators"].sort("annotator_quality")
    assert ann["annotator"][0] == "w4"
    assert (
        -1 <= rep["fleiss_kappa"] <= 1 and rep["krippendorff_alpha"] < rep["mean_cohen_kappa"] + 0.2
    )
    for key in ("fleiss_kappa", "krippendorff_alpha"):
        ci = rep[f"{key}_ci"]
        assert ci["ci_low"] < rep[key] < ci["ci_high"] and ci["n"] == 400
        assert ci["ci_high"] - ci["ci_low"] < 0.2
    json.dumps(rep["fleiss_kappa_ci"], allow_nan=False)
    for col in ("consensus_quality_score", "annotator_agreement", "low_agreement_score"):
        assert out[col].min() >= 0 and out[col].max() <= 1
    low = out.filter(pl.col("is_low_agreement_issue"))
    assert low.height == rep["low_agreement"] > 0 and (low["annotator_agreement"] < 0.5).all()
    adj = rep["tables"]["adjudication"]
    assert adj.height == low.height and adj["votes"][0].count("=") == 3


def test_consensus_step_adjudicate_exports_and_drops(tmp_path) -> None:  # type: ignore[no-untyped-def]
    df, _ = annotations(n_items=200, seed=4)
    out = run_step(
        "consensus",
        {"input": df.drop("truth")},
        {"annotator": "worker", "low_agreement": "adjudicate", "min_agreement": 0.7},
        artifacts_dir=tmp_path,
    )
    data, report = out.frames["data"], out.report
    assert data.height == 200 - report["low_agreement"] and not data["is_low_agreement_issue"].any()
    exported = pl.read_csv(tmp_path / "adjudication.csv")
    assert exported.height == report["low_agreement"] > 0
    assert set(out.tables) == {"annotators", "pairwise_kappa", "adjudication"}
    html = (tmp_path / "agreement.html").read_text()
    assert "Cohen&#x27;s kappa" in html or "Cohen's kappa" in html
    assert "data:image/png;base64" in html


def test_gold_drift_flags_the_annotator_that_degrades() -> None:
    rng = np.random.default_rng(5)
    rows = []
    for i in range(600):
        gold = CLASSES[rng.integers(0, 4)]
        for a in ("steady", "drifter"):
            acc = 0.95 if (a == "steady" or i < 300) else 0.4
            lab = gold if rng.random() < acc else CLASSES[rng.integers(0, 4)]
            rows.append((i, a, lab, gold, i))
    df = pl.DataFrame(rows, schema=["item", "annotator", "label", "gold", "t"], orient="row")
    out, rep = consensus(
        df,
        ConsensusConfig(
            item="item",
            annotator="annotator",
            label="label",
            gold="gold",
            time="t",
            window=100,
            method="majority",
        ),
    )
    drift = rep["tables"]["gold_drift"]
    assert rep["gold_drift"]["annotators_drifting"] == ["drifter"]
    flagged = drift.filter(pl.col("drift"))
    assert set(flagged["window"].cast(pl.Int64).to_list()) == {3, 4, 5}
    assert {"accuracy", "ci_low", "ci_high", "n"} <= set(drift.columns)
    ann = rep["tables"]["annotators"].sort("annotator")
    assert ann["gold_accuracy"][1] > 0.9 and ann["gold_accuracy"][0] < 0.8


def test_bad_annotation_input() -> None:
    df, _ = annotations(n_items=20)
    with pytest.raises(DataError, match="annotator column 'annotator'"):
        consensus(df, ConsensusConfig(item="item", annotator="annotator", label="label"))
    with pytest.raises(DataError, match="same label"):
        consensus(
            df.with_columns(pl.lit("x").alias("label")),
            ConsensusConfig(item="item", annotator="worker", label="label"),
        )
    dup = pl.concat([df, df.head(5).with_columns(pl.lit("eel").alias("label"))])
    _, rep = consensus(dup, ConsensusConfig(item="item", annotator="worker", label="label"))
    assert rep["duplicates_dropped"] == 5


def test_item_features_feed_the_crowdlab_model() -> None:
    df, truth = annotations(n_items=300, seed=1)
    rng = np.random.default_rng(0)
    feat = {f"item{i}": float(t) + rng.normal(scale=0.3) for i, t in enumerate(truth)}
    df = df.drop("truth").with_columns(pl.col("item").replace_strict(feat).alias("f"))
    expected = pl.Series([CLASSES[t] for t in truth])
    with_model, rep = consensus(
        df, ConsensusConfig(item="item", annotator="worker", label="label", features=["f"])
    )
    votes_only, rep2 = consensus(
        df, ConsensusConfig(item="item", annotator="worker", label="label")
    )
    assert rep["pred_probs"].startswith("out-of-fold model") and "vote" in rep2["pred_probs"]
    assert "f" in with_model.columns  # item-level columns are carried over
    acc_model = (with_model["label"] == expected).mean()
    acc_votes = (votes_only["label"] == expected).mean()
    assert acc_model >= acc_votes and acc_model > 0.95
