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

from tamis.sweeps.predictions import CellPredictions, row_keys
from tamis.sweeps.recipes import (
    ClassifierParams,
    ClassifierRecipe,
    TstrParams,
    TstrRecipe,
)
from tamis.sweeps.resample import resample_cells
from tamis.sweeps.scoring import point_metrics
from tamis.sweeps.stats import paired_delta, summarize


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


def test_recipe_predictions_reproduce_its_metrics_and_sklearn(cancer: Any, tmp_path: Path) -> None:
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
    # stored beside the cell result and read back: the same figures, a small file
    meta = pred.save(tmp_path)
    back = CellPredictions.load(tmp_path, meta)
    assert point_metrics(back) == point_metrics(pred)
    assert meta["classes"] == [pos]  # binary: only the positive class's score is kept
    assert (tmp_path / "predictions.parquet").stat().st_size < 20_000


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
    from tamis.errors import DataError

    with pytest.raises(DataError, match="every label"):
        _cell(nulled_train.with_columns(pl.lit(None).alias("label")), test)


# --------------------------------------------------------------------------- a small sweep
@pytest.fixture(scope="module")
def iris_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Iris with 6 labels blanked (sepal length > 7.5): versions `full` and `small` (12 rows
    sampled per seed), 2 seeds, the report written."""
    from tamis.pipelines.store import Store
    from tamis.sweeps import run_sweep
    from tamis.sweeps.spec import parse_sweep

    spec = {
        "name": "iris_nulls",
        "recipe": {"use": "classifier", "params": {"target": "label", "drop": ["target"]}},
        "seeds": [0, 1],
        "datasets": {
            "iris": {
                "loader": "sklearn:iris",
                "options": {
                    "columns": {
                        "label": 'CASE WHEN "sepal_length_(cm)" > 7.5 THEN NULL ELSE target END'
                    }
                },
            }
        },
        "pipeline": {
            "steps": {
                "split": {
                    "use": "split",
                    "input": "iris",
                    "seed": 0,
                    "params": {"fractions": {"train": 0.6, "test": 0.4}, "stratify": "target"},
                },
                "small": {"use": "sample", "input": "split.train", "params": {"n": 30}},
            }
        },
        "versions": {"full": "split.train", "small": "small"},
        "test": "split.test",
        "n_boot": 200,
    }
    store = Store(tmp_path_factory.mktemp("iris") / "s")
    return {"store": store, "result": run_sweep(parse_sweep(spec), store)}


def test_versions_show_rows_balance_steps_and_null_labels(iris_run: dict[str, Any]) -> None:
    """Item 3: per version its rows, class balance (checked against pandas on the stored data),
    chain of steps (from lineage) and the null labels dropped (item 2), in the table too."""
    from sklearn.metrics import average_precision_score
    from sklearn.preprocessing import label_binarize

    from tamis.sweeps import render_sweep_table
    from tamis.sweeps.cell import cell_dir

    store, result = iris_run["store"], iris_run["result"]
    full = result["versions"]["full"]
    data = store.scan(full["ids"]["0"]).collect().to_pandas()
    labelled = data["label"].dropna()
    assert full["rows"]["min"] == full["rows"]["max"] == len(labelled)
    expected = labelled.astype(int).astype(str).value_counts(normalize=True).sort_index()
    assert full["class_balance"] == pytest.approx(expected.to_dict(), abs=1e-12)
    assert full["steps"] == ["iris (source)", "split"]
    assert result["versions"]["small"]["steps"] == ["iris (source)", "split", "sample"]
    nulls = full["null_labels_dropped"]
    test = store.scan(result["test_ids"]["0"]).collect()
    assert nulls == {
        "train": 2 * int(data["label"].isna().sum()),  # summed over the 2 seeds
        "test": 2 * test["label"].null_count(),
    }
    assert nulls["train"] + nulls["test"] == 2 * 6
    assert result["test"]["rows"] == test.height - test["label"].null_count()
    assert result["test"]["null_labels_dropped"] == test["label"].null_count()
    assert any("null label" in w for w in result["warnings"])
    # average precision beside F1, equal to scikit-learn's (macro one-vs-rest for 3 classes)
    metrics = [r["metric"] for r in result["table"] if r["version"] == "full"]
    assert metrics.index("average_precision") == metrics.index("f1") + 2
    cell = result["cells"][0]
    pred = CellPredictions.load(
        cell_dir(store.root, cell["key"]),
        next(c for c in _cells(store, result) if c["key"] == cell["key"])["predictions"],
    )
    sub = pred.proba / pred.proba.sum(axis=1, keepdims=True)
    ref = average_precision_score(label_binarize(pred.y, classes=pred.labels), sub, average="macro")
    assert cell["metrics"]["average_precision"] == pytest.approx(ref, abs=1e-12)
    # the terminal table: the version facts beside the figures
    from rich.console import Console

    console = Console(width=160, record=True)
    console.print(render_sweep_table(result))
    text = console.export_text()
    assert "iris (source) → split → sample" in " ".join(text.replace("│", " ").split())
    assert "null labels dropped" in text
    assert "average_precision" in text and "None" not in text


def _cells(store: Any, result: dict[str, Any]) -> list[dict[str, Any]]:
    import json

    from tamis.sweeps.cell import cell_dir

    return [
        json.loads((cell_dir(store.root, c["key"]) / "result.json").read_text())
        for c in result["cells"]
    ]


def test_html_report_tables_fit_and_never_print_none(iris_run: dict[str, Any]) -> None:
    """Item 4 (structure; the page itself was looked at in headless Chromium): the tables are
    wrapped to the page width and wrap their cells, no cell reads `None`, and the main plot is
    the paired deltas with a zero line."""
    import re

    result = iris_run["result"]
    page = Path(result["report"]["html"]).read_text()
    tables = re.findall(r"<table.*?</table>", page, flags=re.S)
    assert len(tables) == 3  # versions, summary, cells
    assert all("None" not in t and "nan" not in t.lower() for t in tables)
    assert all('<div class="tablewrap"><table class="sweep">' in page for _ in tables)
    css = re.search(r"table\.sweep\{([^}]*)\}", page)
    assert css and "max-width:100%" in css.group(1)
    assert re.search(r"table\.sweep td,table\.sweep th\{[^}]*white-space:normal", page)
    assert re.search(r"\.tablewrap\{[^}]*max-width:100%", page)
    assert "—" in tables[1]  # the baseline's empty delta cells
    assert "Paired deltas against full" in page


def test_delta_figure_has_zero_line_and_symmetric_axes() -> None:
    """The main plot: each version's delta with its CI, zero in the middle of the axis."""
    from tamis.sweeps.figures import delta_figure

    table = [
        {"version": "a", "metric": "auc", "mean": 0.8, "n": 3},
        {
            "version": "b",
            "metric": "auc",
            "mean": 0.8002,
            "n": 3,
            "delta": 0.0002,
            "delta_ci_low": -0.004,
            "delta_ci_high": 0.0045,
            "p": 0.9,
        },
    ]
    fig = delta_figure(
        {"name": "x", "metrics": ["auc"], "baseline": "a", "table": table, "seeds": [0, 1, 2]}
    )
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    assert lo == pytest.approx(-hi) and hi >= 0.0045
    assert any(list(line.get_xdata()) == [0.0, 0.0] for line in ax.get_lines())  # the zero line
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_means_tradeoff_and_curves_figures() -> None:
    """Without a baseline delta: the means with their CIs on the metric's range; the trade-off
    plot puts each version at (privacy mean, utility mean) with both CIs; the learning curves
    average the seeds of a version step by step."""
    import matplotlib.pyplot as plt

    from tamis.sweeps.figures import curves_figure, delta_figure, tradeoff_figure

    def row(version: str, metric: str, mean: float, half: float) -> dict[str, Any]:
        return {
            "version": version,
            "metric": metric,
            "mean": mean,
            "n": 2,
            "ci_low": mean - half,
            "ci_high": mean + half,
        }

    table = [
        row("a", "auc", 0.8, 0.02),
        row("a", "mia_auc", 0.6, 0.05),
        row("b", "auc", 0.7, 0.01),
        row("b", "mia_auc", 0.52, 0.03),
    ]
    result: Any = {
        "name": "x",
        "metrics": ["auc"],
        "figures": ["mia_auc"],
        "baseline": "a",
        "table": table,
        "seeds": [0, 1],
        "tradeoff": {"x": "mia_auc", "y": "auc"},
        "versions": {"a": {}, "b": {}},
        "cells": [
            {"version": "a", "curves": {"loss": [[1, 2.0], [2, 1.0]]}},
            {"version": "a", "curves": {"loss": [[1, 4.0], [2, 3.0]]}},
            {"version": "b", "curves": {}},
        ],
    }
    means = delta_figure(result)  # no deltas: the means
    assert [ax.get_ylim() for ax in means.axes[:2]] == [(0.0, 1.0), (0.0, 1.0)]
    trade = tradeoff_figure(result)
    points = sorted(tuple(c.lines[0].get_xydata()[0]) for c in trade.axes[0].containers)
    assert points == [(0.52, 0.7), (0.6, 0.8)]
    curves = curves_figure(result)
    (line,) = curves.axes[0].get_lines()
    assert list(line.get_ydata()) == [3.0, 2.0]
    for fig in (means, trade, curves):
        plt.close(fig)


def test_adult_blank_line_label_dropped_and_figures_match_sklearn(
    adult_train_clean: pl.DataFrame, adult_test_clean: pl.DataFrame
) -> None:
    """The real messy file plus one null label (adult.data's blank last line read as an all-null
    row by a naive reader). The classifier recipe (it refused the whole cell before) drops and
    counts it; its AUC, average precision and bootstrap CI equal scikit-learn's on the same rows."""
    blank = adult_train_clean.head(1).with_columns(pl.lit(None, pl.String).alias("income"))
    train = pl.concat([adult_train_clean.head(3000), blank])
    assert train["income"].null_count() == 1
    test = adult_test_clean.head(1500)
    out = ClassifierRecipe().run(
        train, test, ClassifierParams(target="income", C=0.5), 0, Path(".")
    )
    assert out.info["null_labels_dropped"] == {"train": 1, "test": 0}
    assert out.info["rows_train"] == 3000 and out.info["positive"] == ">50K"
    pred = out.predictions
    y = pred.y == ">50K"
    score = pred.proba[:, pred.classes.index(">50K")]
    assert out.metrics["auc"] == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert out.metrics["average_precision"] == pytest.approx(
        average_precision_score(y, score), abs=1e-12
    )
    res = resample_cells({"v": {0: pred}}, {0: "t"}, ["auc"], baseline=None, n_boot=60, seed=2)
    idx = np.random.default_rng(2).integers(0, len(y), size=(60, len(y)))
    ref = np.quantile([roc_auc_score(y[i], score[i]) for i in idx], [0.025, 0.975])
    assert [res[("v", "auc")]["ci_low"], res[("v", "auc")]["ci_high"]] == pytest.approx(
        ref.tolist(), abs=1e-12
    )
