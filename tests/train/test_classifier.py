"""The sklearn classifier behind the `classifier` sweep recipe."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tamis.errors import DataError
from tamis.train.classifier import ClassifierConfig, train_and_evaluate


@pytest.fixture(scope="module")
def cancer() -> tuple[pl.DataFrame, pl.DataFrame]:
    df = pl.from_pandas(load_breast_cancer(as_frame=True).frame).sample(
        fraction=1.0, seed=0, shuffle=True
    )
    return df[:400], df[400:]


def test_tabular_logreg_matches_plain_sklearn(cancer: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    train, test = cancer
    out = train_and_evaluate(train, test, ClassifierConfig(target="target"), seed=0)
    x_tr, y_tr = train.drop("target").to_numpy(), train["target"].to_numpy()
    x_te, y_te = test.drop("target").to_numpy(), test["target"].to_numpy()
    ref = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x_tr, y_tr)
    pos = int(np.bincount(y_te).argmin())  # the rarest test class is the positive one
    assert out["positive_label"] == str(pos)
    assert out["accuracy"] == pytest.approx(ref.score(x_te, y_te), abs=1e-9)
    assert out["f1"] == pytest.approx(f1_score(y_te == pos, ref.predict(x_te) == pos), abs=1e-9)
    assert out["auc"] == pytest.approx(
        roc_auc_score(y_te == pos, ref.predict_proba(x_te)[:, pos]), abs=1e-9
    )
    assert out["accuracy"] > 0.93 and out["n_train"] == 400


def test_gbm_and_categoricals_and_issue_columns_ignored() -> None:
    rng = np.random.default_rng(0)
    n = 600
    color = rng.choice(["red", "green", "blue"], size=n)
    x = rng.normal(size=n)
    y = np.where((color == "red") | (x > 1), "yes", "no")
    df = pl.DataFrame(
        {
            "color": color,
            "x": x,
            "y": y,
            # label_issues adds these; using them as features would leak the label
            "is_label_issue": rng.random(n) < 0.1,
            "label_quality_score": rng.random(n),
            "suggested_label": y,
        }
    )
    from threadpoolctl import threadpool_limits

    for model in ("logreg", "gbm"):
        with threadpool_limits(1):  # OpenMP spinning is slow on a loaded shared machine
            out = train_and_evaluate(
                df[:400], df[400:], ClassifierConfig(target="y", model=model, max_iter=100)
            )
        assert out["accuracy"] > 0.9, model


def test_text_classifier_and_multiclass_macro() -> None:
    words = {
        "sport": "goal match team score",
        "tech": "cpu code chip laptop",
        "food": "pasta bread cook taste",
    }
    rng = np.random.default_rng(1)
    rows = []
    for i in range(300):
        label = list(words)[i % 3]
        toks = rng.choice(words[label].split(), size=4).tolist() + ["the", "a"]
        rows.append({"text": " ".join(toks), "label": label})
    df = pl.DataFrame(rows)
    out = train_and_evaluate(
        df[:200], df[200:], ClassifierConfig(target="label", text_column="text")
    )
    assert out["accuracy"] > 0.95 and out["f1"] > 0.95 and out["auc"] > 0.95
    assert "positive_label" not in out  # three classes: macro averages


def test_bad_input_names_the_column() -> None:
    df = pl.DataFrame({"a": [1.0, 2.0, 3.0], "y": ["x", "x", "x"]})
    with pytest.raises(DataError, match="label column 'label'") as exc:
        train_and_evaluate(df, df, ClassifierConfig())
    assert exc.value.column == "label"
    with pytest.raises(DataError, match="single class"):
        train_and_evaluate(df, df, ClassifierConfig(target="y"))
    two = pl.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "y": ["x", "z", "x", "z"]})
    with pytest.raises(DataError, match="feature column 'zz'"):
        train_and_evaluate(two, two, ClassifierConfig(target="y", features=["zz"]))
