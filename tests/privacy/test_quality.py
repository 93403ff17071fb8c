"""Quality: ML efficacy (TSTR vs TRTR) and SDMetrics' QualityReport."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from tamis.errors import DataError
from tamis.privacy.quality import ml_efficacy, quality_report, tstr


def test_ml_efficacy_learns_and_reports_cis(make_mixed: Any) -> None:
    train, test = make_mixed(3000, seed=1), make_mixed(2000, seed=2)
    r = ml_efficacy(train, test, "label", n_boot=50)
    assert r["n_train"] == 3000 and r["n"] == 2000
    assert r["auc"] > 0.7 and r["accuracy"] > 0.6
    assert r["accuracy_ci_low"] <= r["accuracy"] <= r["accuracy_ci_high"]
    lr = ml_efficacy(train, test, "label", model="logreg", n_boot=0)
    assert lr["auc"] > 0.7


def test_majority_class_generator_cannot_look_good(make_mixed: Any) -> None:
    real, hold = make_mixed(2000, seed=1), make_mixed(1500, seed=2)
    majority = real["label"].mode()[0]
    fake = real.with_columns(pl.lit(majority).alias("label"))
    r = tstr(fake, real, hold, "label", n_boot=0)
    assert r["tstr"]["minority_f1"] == 0.0 and r["tstr"]["auc"] == 0.5
    assert r["trtr"]["minority_f1"] > 0.3
    assert r["minority_f1_gap"] > 0.3 and r["auc_gap"] > 0.2
    # the minority class is read from the real holdout, never from the synthetic data
    assert r["tstr"]["minority_class"] == r["trtr"]["minority_class"]


def test_tstr_on_adult_real_vs_real(adult_tr: pl.DataFrame, adult_te: pl.DataFrame) -> None:
    a, b = adult_tr[:5000], adult_tr[5000:10000]
    r = tstr(a, b, adult_te.head(4000), "income", n_boot=0)
    assert r["tstr"]["minority_class"] == ">50K"
    assert abs(r["accuracy_gap"]) < 0.025 and r["trtr"]["auc"] > 0.88


def test_quality_report_scores(make_mixed: Any) -> None:
    a, b = make_mixed(1500, seed=1), make_mixed(1500, seed=2)
    same = quality_report(a, b)
    assert same["score"] > 0.9 and {c["column"] for c in same["columns"]} == set(a.columns)
    shuffled = b.with_columns(pl.col("amount") * 5 + 1000)
    assert quality_report(a, shuffled)["column_shapes"] < same["column_shapes"]


def test_bad_target_and_columns(make_mixed: Any) -> None:
    a = make_mixed(200)
    with pytest.raises(DataError, match="target column 'nope'"):
        ml_efficacy(a, a, "nope")
    with pytest.raises(DataError, match="lacks columns"):
        quality_report(a, a.drop("amount"))


def test_integer_labels_that_became_floats_still_match_the_holdout() -> None:
    """A synthetic integer label with a few nulls arrives as floats (1.0): it must still be
    scored against the real holdout's 1, not count every prediction wrong."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=2000)
    y = (x + rng.normal(scale=0.5, size=2000) > 0).astype(int)
    real = pl.DataFrame({"x": x[:1000], "y": y[:1000]})
    hold = pl.DataFrame({"x": x[1000:], "y": y[1000:]})
    synth = real.with_columns(
        pl.when(pl.int_range(pl.len()) % 50 == 0).then(None).otherwise(pl.col("y")).alias("y")
    ).with_columns(pl.col("y").cast(pl.Float64))
    r = ml_efficacy(synth, hold, "y", n_boot=0)
    assert r["n_train"] == 980 and r["train_classes"] == ["0", "1"]
    assert r["accuracy"] > 0.75 and r["auc"] > 0.8
