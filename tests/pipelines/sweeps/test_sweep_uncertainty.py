"""Sweep uncertainty: per-example predictions and the paired bootstrap over test rows and seeds,
checked against independent computations (scikit-learn metrics on resampled rows, scipy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score

from tamis.pipelines.sweeps.recipes import (
    ClassifierParams,
    ClassifierRecipe,
    TstrParams,
    TstrRecipe,
)
from tamis.pipelines.sweeps.scoring import CellPredictions, point_metrics, row_keys
from tamis.pipelines.sweeps.stats import paired_delta, resample_cells, summarize


@pytest.fixture(scope="module")
def cancer() -> tuple[pl.DataFrame, pl.DataFrame]:
    """scikit-learn's breast cancer data (569 rows, binary), a fixed 60/40 split."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True).frame
    df = pl.from_pandas(data).rename({"target": "label"})
    df = df.select([pl.col(c).alias(c.replace(" ", "_")) for c in df.columns])
    idx = np.random.default_rng(0).permutation(df.height)
    return df[idx[:340].tolist()], df[idx[340:].tolist()]


def _cell(
    train: pl.DataFrame, test: pl.DataFrame, seed: int = 0, tmp: Path | None = None, **params: Any
) -> tuple[Any, CellPredictions]:
    out = ClassifierRecipe().run(
        train, test, ClassifierParams(target="label", **params), seed, tmp or Path(".")
    )
    return out, out.predictions


def test_recipe_predictions_reproduce_its_metrics_and_sklearn(cancer: Any) -> None:
    train, test = cancer
    out, pred = _cell(train, test, C=0.5)
    pos = pred.positive
    score = pred.proba[:, pred.classes.index(pos)]
    y = pred.y == pos
    # the stored predictions give the recipe's own figures, and scikit-learn's
    pts = point_metrics(pred)
    for m in ("accuracy", "precision", "recall", "f1", "auc"):
        assert pts[m] == pytest.approx(out.metrics[m], abs=1e-12), m
    assert pts["auc"] == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert out.metrics["average_precision"] == pytest.approx(
        average_precision_score(y, score), abs=1e-12
    )
    assert len(pred.y) == test.height and list(pred.keys) == sorted(pred.keys)


def test_bootstrap_ci_matches_an_independent_sklearn_bootstrap(cancer: Any) -> None:
    """(b) One version, one seed: the same generator and seed give the same replicates, so the
    CI equals percentiles of roc_auc_score / average_precision_score on the resampled rows."""
    train, test = cancer
    _out, pred = _cell(train, test, C=0.5)
    n_boot, seed = 200, 11
    res = resample_cells(
        {"v": {0: pred}},
        {0: "t"},
        ["auc", "average_precision", "accuracy"],
        baseline=None,
        n_boot=n_boot,
        seed=seed,
    )
    pos = pred.positive
    y = pred.y == pos
    score = pred.proba[:, pred.classes.index(pos)]
    idx = np.random.default_rng(seed).integers(0, len(y), size=(n_boot, len(y)))
    aucs = [roc_auc_score(y[i], score[i]) for i in idx]
    aps = [average_precision_score(y[i], score[i]) for i in idx]
    accs = [accuracy_score(pred.y[i], pred.pred[i]) for i in idx]
    for metric, ref in (("auc", aucs), ("average_precision", aps), ("accuracy", accs)):
        lo, hi = np.quantile(ref, [0.025, 0.975])
        assert res[("v", metric)]["ci_low"] == pytest.approx(lo, abs=1e-12), metric
        assert res[("v", metric)]["ci_high"] == pytest.approx(hi, abs=1e-12), metric
    # another seed: within Monte Carlo error of the independent bootstrap
    other = resample_cells(
        {"v": {0: pred}}, {0: "t"}, ["auc"], baseline=None, n_boot=1000, seed=99
    )[("v", "auc")]
    width = float(np.subtract(*np.quantile(aucs, [0.975, 0.025])))
    assert other["ci_low"] == pytest.approx(np.quantile(aucs, 0.025), abs=0.3 * width)
    assert other["ci_high"] == pytest.approx(np.quantile(aucs, 0.975), abs=0.3 * width)
    # accuracy: scipy's own percentile bootstrap of the mean of correct predictions
    correct = (pred.y == pred.pred).astype(float)
    sp = stats.bootstrap(
        (correct,), np.mean, n_resamples=4000, method="percentile", rng=np.random.default_rng(5)
    ).confidence_interval
    acc = resample_cells(
        {"v": {0: pred}}, {0: "t"}, ["accuracy"], baseline=None, n_boot=4000, seed=3
    )[("v", "accuracy")]
    se = correct.std() / np.sqrt(correct.size)
    assert acc["ci_low"] == pytest.approx(sp.low, abs=0.25 * se)
    assert acc["ci_high"] == pytest.approx(sp.high, abs=0.25 * se)


def test_deterministic_version_gets_a_ci_of_nonzero_width(cancer: Any) -> None:
    """(a) Logistic regression on a fixed version: the same predictions for every seed. Over
    seeds alone the CI had zero width; resampling test rows gives the test set's error."""
    train, test = cancer
    cells = {s: _cell(train, test, seed=s, C=0.5) for s in (0, 1, 2)}
    aucs = [out.metrics["auc"] for out, _ in cells.values()]
    old = summarize(aucs)
    assert old["ci_high"] - old["ci_low"] == 0  # what the table used to print
    res = resample_cells(
        {"v": {s: p for s, (_o, p) in cells.items()}},
        dict.fromkeys(cells, "t"),
        ["auc", "f1"],
        baseline=None,
        n_boot=500,
        seed=0,
    )
    for metric in ("auc", "f1"):
        row = res[("v", metric)]
        assert row["ci_high"] - row["ci_low"] > 0.002, metric
        assert 0.0 <= row["ci_low"] <= row["ci_high"] <= 1.0  # bounded: clipped to [0, 1]


def _synthetic_cell(y: np.ndarray, score: np.ndarray, keys: np.ndarray) -> CellPredictions:
    proba = np.column_stack([1 - score, score])
    pred = np.where(score >= 0.5, "1", "0")
    return CellPredictions.build(
        keys,
        y.astype(int).astype(str),
        pred,
        proba,
        ["0", "1"],
        positive="1",
        names={},
        binary=True,
    )


def test_tiny_delta_is_not_significant() -> None:
    """(c) Two models whose AUCs differ by about +0.0002 on a fixed test set (the second
    is better on some rows, worse on others) and barely vary across seeds: the paired t-test
    over seeds calls it significant, the paired bootstrap over test rows and seeds does not."""
    rng = np.random.default_rng(1)
    n = 1000
    y = rng.random(n) < 0.3
    base = 1.2 * y + rng.normal(0, 1, n)
    other = base + np.random.default_rng(0).normal(0, 0.05, n)  # another model, row by row
    keys = np.asarray([f"{i:06d}" for i in range(n)])

    def sig(x: np.ndarray) -> np.ndarray:
        return np.asarray(1 / (1 + np.exp(-x)))

    true_delta = roc_auc_score(y, other) - roc_auc_score(y, base)
    assert true_delta == pytest.approx(0.0002, abs=0.00005)  # +0.0002
    a_cells, b_cells, a_auc, b_auc = {}, {}, {}, {}
    for s in range(5):
        jitter = np.random.default_rng(100 + s).normal(0, 0.002, n)  # seed-to-seed training noise
        a_cells[s] = _synthetic_cell(y, sig(base + jitter), keys)
        b_cells[s] = _synthetic_cell(y, sig(other + jitter), keys)
        a_auc[s] = roc_auc_score(y, base + jitter)
        b_auc[s] = roc_auc_score(y, other + jitter)
    old = paired_delta(b_auc, a_auc)
    assert abs(old["delta"]) < 0.001 and old["p_ttest"] < 0.05  # the old table: "significant"
    res = resample_cells(
        {"a": a_cells, "b": b_cells},
        dict.fromkeys(range(5), "t"),
        ["auc"],
        baseline="a",
        n_boot=1000,
        seed=0,
    )[("b", "auc")]
    print(
        f"AUC delta {old['delta']:+.5f}: t-test p {old['p_ttest']:.3g}, bootstrap p {res['p']:.3g}"
    )
    assert res["p"] > 0.2
    assert res["delta_ci_low"] < 0 < res["delta_ci_high"]
    # the identical version is no effect at all
    same = resample_cells(
        {"a": a_cells, "c": a_cells},
        dict.fromkeys(range(5), "t"),
        ["auc"],
        baseline="a",
        n_boot=200,
    )[("c", "auc")]
    assert same["p"] == 1.0 and same["delta_ci_low"] == same["delta_ci_high"] == 0.0


def test_results_do_not_depend_on_test_row_order(cancer: Any) -> None:
    """(d) The same test rows in another order: identical predictions after sorting by content,
    identical CIs, deltas and p-values."""
    train, test = cancer
    shuffled = test[np.random.default_rng(3).permutation(test.height).tolist()]
    out = {}
    for name, t in (("orig", test), ("shuffled", shuffled)):
        cells = {
            "a": {0: _cell(train, t, C=0.5)[1], 1: _cell(train, t, seed=1, C=0.5)[1]},
            "b": {0: _cell(train, t, C=0.05)[1], 1: _cell(train, t, seed=1, C=0.05)[1]},
        }
        out[name] = resample_cells(
            cells,
            {0: "t", 1: "t"},
            ["accuracy", "f1", "auc", "average_precision"],
            baseline="a",
            n_boot=300,
            seed=4,
        )
    assert out["orig"] == out["shuffled"]
    assert out["orig"][("b", "auc")]["delta_ci_low"] is not None
    assert sorted(row_keys(test)) == sorted(row_keys(shuffled))


def test_null_labels_are_dropped_and_counted_on_both_sides(cancer: Any) -> None:
    """Item 2: a null label is not a class. The classifier recipe refused the whole cell and
    TSTR dropped rows silently; both now drop them and report how many, per side."""
    train, test = cancer
    nulled_train = train.with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(None).otherwise(pl.col("label")).alias("label")
    )
    nulled_test = test.with_columns(
        pl.when(pl.int_range(pl.len()) < 2).then(None).otherwise(pl.col("label")).alias("label")
    )
    out, pred = _cell(nulled_train, nulled_test, C=0.5)
    assert out.info["null_labels_dropped"] == {"train": 3, "test": 2}
    assert out.info["rows_train"] == train.height - 3 and len(pred.y) == test.height - 2
    ref, _ = _cell(train[3:], test[2:], C=0.5)
    assert out.metrics == ref.metrics  # the same as a user dropping them first
    tstr = TstrRecipe().run(
        nulled_train, nulled_test, TstrParams(target="label", model="logreg"), 0, Path(".")
    )
    assert tstr.info["null_labels_dropped"] == {"train": 3, "test": 2}
    assert tstr.info["n"] == test.height - 2
    # TSTR's figures from its predictions agree with scikit-learn
    p = tstr.predictions
    score = p.proba[:, p.classes.index(p.positive)]
    assert tstr.metrics["average_precision"] == pytest.approx(
        average_precision_score(p.y == p.positive, score), abs=1e-12
    )
    assert point_metrics(p)["f1"] == pytest.approx(tstr.metrics["minority_f1"], abs=1e-12)
    assert point_metrics(p)["auc"] == pytest.approx(tstr.metrics["auc"], abs=1e-12)
    from tamis.errors import StepError

    with pytest.raises(StepError, match="every label"):
        _cell(nulled_train.with_columns(pl.lit(None).alias("label")), test)
