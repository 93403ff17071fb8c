"""Dawid-Skene and Bradley-Terry (issue 18): against crowd-kit (dev extra), scipy's optimiser on
the same likelihood, and a simulated crowd with known rater error rates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from tamis.curate.annotation.aggregate import AggregateLabelsConfig
from tamis.curate.annotation.bradley_terry import bradley_terry, win_matrix
from tamis.curate.annotation.dawid_skene import dawid_skene
from tamis.pipelines.steps.aggregate_labels import AggregateLabels
from tamis.pipelines.steps.base import StepContext

ERRORS = {"r1": 0.1, "r2": 0.3, "r3": 0.4, "r4": 0.4}


def crowd(seed: int = 0, n: int = 600, k: int = 3) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    prior = np.array([0.5, 0.3, 0.2][:k])
    truth = rng.choice(k, size=n, p=prior / prior.sum())
    rows = []
    for r, e in ERRORS.items():
        for i in range(n):
            if rng.random() < 0.8:
                wrong = rng.choice([c for c in range(k) if c != truth[i]])
                rows.append((f"i{i:04d}", r, f"c{truth[i] if rng.random() > e else wrong}"))
    return pl.DataFrame(rows, schema=["item", "annotator", "label"], orient="row"), truth


def test_dawid_skene_recovers_simulated_raters() -> None:
    df, truth = crowd(n=1500)
    res = dawid_skene(df, item="item", annotator="annotator", label="label")
    assert res.converged
    true = {f"i{i:04d}": f"c{t}" for i, t in enumerate(truth)}
    acc = np.mean([lab == true[it] for it, lab in zip(res.items, res.labels(), strict=True)])
    # majority vote on the same votes, computed with pandas
    votes = df.to_pandas()
    mv = votes.groupby("item")["label"].agg(lambda s: s.value_counts().index[0])
    mv_acc = np.mean([mv[it] == true[it] for it in mv.index])
    assert acc > mv_acc and acc > 0.84
    est = dict(zip(res.annotators, res.rater_accuracy(), strict=True))
    votes["true"] = votes["item"].map(true)
    realised = (votes["label"] == votes["true"]).groupby(votes["annotator"]).mean()
    for r, e in ERRORS.items():
        assert abs(realised[r] - (1 - e)) < 0.05  # the simulation did what it says
        assert abs(est[r] - realised[r]) < 0.05, (r, est[r], realised[r])
    # confusion matrices against the empirical ones (pandas crosstab on the known truth)
    for a, r in enumerate(res.annotators):
        emp = pd.crosstab(
            votes.loc[votes.annotator == r, "true"],
            votes.loc[votes.annotator == r, "label"],
            normalize="index",
        ).loc[res.classes, res.classes]
        assert np.abs(emp.to_numpy() - res.confusion[a]).max() < 0.08
    # row order never matters
    again = dawid_skene(
        df.sample(fraction=1.0, shuffle=True, seed=3),
        item="item",
        annotator="annotator",
        label="label",
    )
    np.testing.assert_allclose(again.posteriors, res.posteriors, atol=1e-12)


def test_dawid_skene_matches_crowd_kit() -> None:
    ck = pytest.importorskip("crowdkit.aggregation")
    df, _ = crowd(seed=1, n=200)
    # the same number of EM rounds from the same start (majority-vote shares)
    res = dawid_skene(df, item="item", annotator="annotator", label="label", max_iter=40, tol=0.0)
    twin = ck.DawidSkene(n_iter=40, tol=0.0).fit(
        df.to_pandas().rename(columns={"item": "task", "annotator": "worker"})
    )
    probas = twin.probas_.loc[res.items, res.classes].to_numpy()
    # crowd-kit floors probabilities at 1e-10 (tamis at 1e-12): close, not bit-equal
    np.testing.assert_allclose(res.posteriors, probas, atol=1e-6)
    assert res.labels() == list(twin.labels_.loc[res.items])
    errors = twin.errors_  # index (worker, observed label), columns: true label
    for a, r in enumerate(res.annotators):
        got = errors.loc[r].loc[res.classes, res.classes].to_numpy().T
        np.testing.assert_allclose(res.confusion[a], got, atol=1e-6)


def pairs(seed: int = 0, n_votes: int = 3000) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    s = np.linspace(-1.5, 1.5, 6)
    rows = []
    for v in range(n_votes):
        a, b = rng.choice(6, 2, replace=False)
        pa = 1 / (1 + np.exp(s[b] - s[a]))
        win = a if rng.random() < pa else b
        rows.append((f"m{a}", f"m{b}", f"m{win}", f"w{v % 3}"))
    return pl.DataFrame(rows, schema=["left", "right", "winner", "annotator"], orient="row"), s


@pytest.mark.parametrize("prior", [0.0, 1.0])
def test_bradley_terry_is_the_mle(prior: float) -> None:
    from scipy.optimize import minimize

    df, _ = pairs(n_votes=400)
    res = bradley_terry(df, left="left", right="right", winner="winner", prior=prior)
    w, names, bad = win_matrix(df, left="left", right="right", winner="winner")
    assert bad == 0 and names == res.names

    def nll(x: np.ndarray) -> float:
        s = x - x.mean() if prior == 0 else x
        d = s[:, None] - s[None, :]
        val = -(w * -np.logaddexp(0, -d)).sum()
        if prior:
            val -= prior * (-np.logaddexp(0, -s) - np.logaddexp(0, s)).sum()
        return float(val)

    opt = minimize(nll, np.zeros(len(names)), method="BFGS", options={"gtol": 1e-9})
    want = opt.x - opt.x.mean() if prior == 0 else opt.x
    np.testing.assert_allclose(res.scores, want, atol=1e-4)


def test_bradley_terry_recovers_scores_and_ranks() -> None:
    df, s = pairs()
    res = bradley_terry(df, left="left", right="right", winner="winner", prior=0.0)
    np.testing.assert_allclose(res.scores, s - s.mean(), atol=0.15)
    assert res.table()["name"].to_list() == [f"m{i}" for i in range(5, -1, -1)]


def test_crowd_kit_bradley_terry_stops_after_two_updates() -> None:
    """Why the twin for Bradley-Terry is scipy, not crowd-kit 1.4: its convergence check
    compares an array with itself, so it returns after the first MM updates."""
    ck = pytest.importorskip("crowdkit.aggregation")
    df, s = pairs()
    twin = ck.BradleyTerry(n_iter=1000, tol=1e-12).fit(
        df.to_pandas().rename(columns={"winner": "label", "annotator": "worker"})
    )
    got = np.log(twin.scores_.loc[[f"m{i}" for i in range(6)]].to_numpy())
    assert np.abs((got - got.mean()) - (s - s.mean())).max() > 0.3


def _ctx(tmp_path: Path) -> StepContext:
    return StepContext(step="agg", pipeline="p", seed=0, artifacts_dir=tmp_path)


def test_step_reports_raters_gold_and_drift(tmp_path: Path) -> None:
    df, truth = crowd(seed=2, n=400, k=2)
    rng = np.random.default_rng(5)
    gold_items = {f"i{i:04d}" for i in rng.choice(400, 120, replace=False)}
    true = {f"i{i:04d}": f"c{t}" for i, t in enumerate(truth)}
    start = datetime(2026, 11, 2, tzinfo=timezone.utc)
    pdf = df.to_pandas()
    pdf["gold"] = [true[i] if i in gold_items else None for i in pdf["item"]]
    pdf["time"] = [start + timedelta(days=int(i[1:]) * 21 / 400) for i in pdf["item"]]
    late = (pdf["annotator"] == "r1") & (pdf["time"] >= start + timedelta(days=14))
    # r1 (10% error) gets careless in week 3: always says c0
    pdf.loc[late, "label"] = "c0"
    data = pl.from_pandas(pdf)
    p = AggregateLabelsConfig(gold="gold", time="time", window="1w", min_window_items=8)
    out = AggregateLabels().run({"input": data.lazy()}, p, _ctx(tmp_path))
    raters = out.tables["raters"].to_pandas().set_index("annotator")
    on_gold = pdf[pdf["gold"].notna()]
    want = (on_gold["label"] == on_gold["gold"]).groupby(on_gold["annotator"]).mean()
    np.testing.assert_allclose(raters.loc[want.index, "gold_accuracy"], want.to_numpy())
    cons = out.frames["data"].to_pandas().set_index("item")["label"]
    agree = (pdf["label"] == pdf["item"].map(cons)).groupby(pdf["annotator"]).mean()
    np.testing.assert_allclose(raters.loc[agree.index, "agreement_with_consensus"], agree)
    assert out.report["gold_drift"]["annotators_drifting"] == ["r1"]
    conf = out.tables["confusion"]
    assert conf.height == 4 * 2 * 2
    sums = conf.group_by("annotator", "true_label").agg(pl.col("probability").sum())
    np.testing.assert_allclose(sums["probability"].to_numpy(), 1.0)


def test_step_bradley_terry(tmp_path: Path) -> None:
    df, s = pairs(n_votes=1500)
    p = AggregateLabelsConfig(method="bradley_terry", prior=0.0)
    out = AggregateLabels().run({"input": df.lazy()}, p, _ctx(tmp_path))
    table = out.frames["data"]
    assert table["name"].to_list()[0] == "m5" and table["rank"].to_list() == list(range(1, 7))
    assert out.tables["raters"]["votes"].sum() == 1500


def test_gold_drift_is_fisher_against_the_other_windows() -> None:
    from scipy.stats import fisher_exact

    from tamis.curate.annotation.drift import gold_drift

    rng = np.random.default_rng(4)
    rows = []
    for week in range(4):
        for j in range(30):
            acc = 0.9 if week < 3 else 0.55  # rater b gets careless in week 4
            for r in ("a", "b"):
                ok = rng.random() < (acc if r == "b" else 0.9)
                rows.append((r, week * 100 + j, "x" if ok else "y", "x"))
    df = pl.DataFrame(rows, schema=["annotator", "t", "label", "gold"], orient="row")
    out = gold_drift(df, AggregateLabelsConfig(gold="gold", time="t", window=100))
    assert out.filter(pl.col("drift"))[["annotator", "window"]].rows() == [("b", "3")]
    # each p-value is scipy's one-sided Fisher test of that window against the rater's others
    pdf = df.to_pandas()
    pdf["ok"] = pdf["label"] == pdf["gold"]
    pdf["window"] = (pdf["t"] // 100).astype(str)
    for r in out.iter_rows(named=True):
        mine = pdf[pdf.annotator == r["annotator"]]
        inside = mine[mine.window == r["window"]]["ok"]
        rest = mine[mine.window != r["window"]]["ok"]
        table = [[inside.sum(), (~inside).sum()], [rest.sum(), (~rest).sum()]]
        assert r["p_value"] == pytest.approx(fisher_exact(table, alternative="less")[1])


def test_gold_drift_few_false_alarms() -> None:
    """Raters of constant accuracy: a drift flag in at most 1 of 40 simulated crowds."""
    from tamis.curate.annotation.drift import gold_drift

    alarms = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        n = 6 * 15
        ok = rng.random(n) < 0.75
        df = pl.DataFrame(
            {
                "annotator": ["a"] * n,
                "t": np.arange(n),
                "gold": ["x"] * n,
                "label": np.where(ok, "x", "y"),
            }
        )
        out = gold_drift(df, AggregateLabelsConfig(gold="gold", time="t", window=15))
        alarms += int(out["drift"].any())
    assert alarms <= 1


def test_step_bradley_terry_from_a_preference_import(tmp_path: Path) -> None:
    """A preference import labels each vote with the preferred column (chosen/rejected); with
    `sides` the step turns that into the model that won and scores the models."""
    df, s = pairs(n_votes=900)
    votes = df.with_columns(
        pl.col("left").alias("model_chosen"),
        pl.col("right").alias("model_rejected"),
        pl.when(pl.col("winner") == pl.col("left"))
        .then(pl.lit("chosen"))
        .otherwise(pl.lit("rejected"))
        .alias("label"),
    ).drop("left", "right", "winner")
    p = AggregateLabelsConfig(
        method="bradley_terry",
        left="model_chosen",
        right="model_rejected",
        winner="label",
        sides=["chosen", "rejected"],
        prior=0.0,
    )
    out = AggregateLabels().run({"input": votes.lazy()}, p, _ctx(tmp_path)).frames["data"]
    direct = bradley_terry(df, left="left", right="right", winner="winner", prior=0.0)
    got = dict(zip(out["name"], out["score"], strict=True))
    np.testing.assert_allclose([got[n] for n in direct.names], direct.scores, atol=1e-9)
