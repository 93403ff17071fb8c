"""Tabular or text classifiers with scikit-learn, trained on one frame and scored on another.

The `classifier` sweep recipe trains on each data version and always evaluates on one fixed real
test set. Tabular data: numeric columns median-imputed and standardised, other columns one-hot
encoded, then logistic regression or histogram gradient boosting. Text data (a `text_column`):
TF-IDF word 1-2 grams + logistic regression.

    from tamis.train.classifier import ClassifierConfig, train_and_evaluate
    metrics = train_and_evaluate(train_df, test_df, ClassifierConfig(target="target"), seed=0)
    # {"accuracy": 0.95, "precision": ..., "recall": ..., "f1": ..., "auc": ..., "n_train": ...}

Precision, recall and F1 are of the positive class for two classes (the `positive_label`, or the
least frequent class of the test set) and macro averages for more; AUC is the ROC AUC of the
positive class (binary) or the one-vs-rest macro AUC (multiclass).
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from tamis.config import Config
from tamis.errors import DataError
from tamis.tabular import column_encoder, make_classifier, to_pandas


class ClassifierConfig(Config):
    """How to train and score a classifier."""

    target: str = Field(default="label", description="the label column")
    text_column: str | None = Field(
        default=None, description="a free-text column: TF-IDF + logistic regression"
    )
    features: list[str] | None = Field(
        default=None, description="feature columns (default: every column but the target)"
    )
    drop: list[str] = Field(
        default_factory=list, description="columns never used as features (ids, issue flags)"
    )
    model: Literal["logreg", "gbm"] = Field(
        default="logreg",
        description="tabular model: logistic regression or gradient boosting",
    )
    C: float = Field(default=1.0, gt=0, description="inverse L2 strength of logistic regression")
    max_iter: int = Field(default=2000, ge=1, description="iterations of the solver / boosting")
    positive_label: str | None = Field(
        default=None,
        description="positive class for binary P/R/F1 (default: rarest test class)",
    )
    max_features: int = Field(default=50_000, ge=1, description="TF-IDF vocabulary size")


def _labels(df: pd.DataFrame, target: str) -> np.ndarray:
    if target not in df.columns:
        raise DataError(
            f"label column '{target}' is not in the data",
            column=target,
            fix=f"set target to one of: {', '.join(map(str, df.columns))}",
        )
    y = df[target]
    if y.isna().any():
        raise DataError(
            f"label column '{target}' has {int(y.isna().sum())} missing values",
            column=target,
            fix="drop or fill rows without a label before training (e.g. a `filter` step)",
        )
    return y.astype(str).str.strip().to_numpy()


def _feature_columns(df: pd.DataFrame, config: ClassifierConfig) -> list[str]:
    if config.text_column:
        return [config.text_column]
    if config.features:
        cols = list(config.features)
    else:
        skip = {config.target, *config.drop, *_issue_columns(df.columns)}
        cols = [c for c in df.columns if c not in skip]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(
            f"feature column '{missing[0]}' is not in the data",
            column=missing[0],
            fix=f"columns present: {', '.join(map(str, df.columns))}",
        )
    if not cols:
        raise DataError("no feature columns left", fix="set `features:` or fewer `drop:` columns")
    return cols


def _issue_columns(columns: Any) -> set[str]:
    """Issue columns added by curation steps (`is_<name>_issue`, `<name>_score`, suggestions)."""
    names = [str(c) for c in columns]
    out: set[str] = set()
    for c in names:
        if c.startswith("is_") and c.endswith("_issue"):
            issue = c[3 : -len("_issue")]
            out.add(c)
            out.update(n for n in (f"{issue}_score", f"{issue}_quality_score") if n in names)
    if "is_label_issue" in out:
        out.update(n for n in ("suggested_label", "given_label") if n in names)
    return out


def build_model(df: pd.DataFrame, config: ClassifierConfig, seed: int) -> Any:
    """An unfitted sklearn Pipeline for these columns and this config."""
    from sklearn.pipeline import Pipeline

    if config.text_column:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return Pipeline(
            [
                (
                    "tfidf",
                    TfidfVectorizer(
                        ngram_range=(1, 2), sublinear_tf=True, max_features=config.max_features
                    ),
                ),
                ("clf", make_classifier("logreg", C=config.C * 10, max_iter=config.max_iter)),
            ]
        )
    cols = _feature_columns(df, config)
    num = [c for c in cols if pd.api.types.is_numeric_dtype(df[c]) and df[c].dtype != bool]
    cat = [c for c in cols if c not in num]
    pre = column_encoder(
        num,
        cat,
        missing_indicator=False,
        handle_unknown="ignore",
        min_frequency=5,
        fill_categorical="<missing>",
        sparse_threshold=0.3 if config.model == "logreg" else 0.0,
    )
    clf = make_classifier(
        config.model,
        seed=seed,
        C=config.C,
        max_iter=min(config.max_iter, 300) if config.model == "gbm" else config.max_iter,
        early_stopping=False,
        choices=("logreg", "gbm"),
    )
    return Pipeline([("pre", pre), ("clf", clf)])


def _as_text(df: pd.DataFrame, config: ClassifierConfig) -> Any:
    if config.text_column:
        if config.text_column not in df.columns:
            raise DataError(
                f"text column '{config.text_column}' is not in the data",
                column=config.text_column,
                fix=f"columns present: {', '.join(map(str, df.columns))}",
            )
        return df[config.text_column].fillna("").astype(str)
    return df[_feature_columns(df, config)]


def train_classifier(train: Any, config: ClassifierConfig, seed: int = 0) -> Any:
    """Fit the model on a Polars or pandas frame; returns the fitted sklearn pipeline."""
    df = to_pandas(train)
    if len(df) == 0:
        raise DataError("the training data is empty", fix="check the version the sweep trains on")
    y = _labels(df, config.target)
    if len(set(y.tolist())) < 2:
        raise DataError(
            f"the training data has a single class in '{config.target}'",
            column=config.target,
            fix="a classifier needs at least two classes",
        )
    model = build_model(df, config, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(_as_text(df, config), y)
    return model


def evaluate_classifier(model: Any, test: Any, config: ClassifierConfig) -> dict[str, Any]:
    """Accuracy, precision, recall, F1 and AUC of a fitted model on a labelled test frame."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score

    df = to_pandas(test)
    if len(df) == 0:
        raise DataError("the test data is empty", fix="check the sweep's test version")
    y = _labels(df, config.target)
    classes = sorted(set(y.tolist()) | {str(c) for c in model.classes_})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = model.predict_proba(_as_text(df, config))
    proba = np.zeros((len(df), len(classes)))
    for j, c in enumerate(model.classes_):
        proba[:, classes.index(str(c))] = p[:, j]
    pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    present = sorted(set(y.tolist()))
    out: dict[str, Any] = {"accuracy": float(accuracy_score(y, pred))}
    if len(present) == 2 and len(classes) == 2:
        pos = config.positive_label
        if pos is None:
            counts = pd.Series(y).value_counts()
            pos = str(counts.sort_values(kind="stable").index[0])
        p_, r_, f_, _ = precision_recall_fscore_support(
            y == pos, pred == pos, average="binary", zero_division=0.0
        )
        auc = float(roc_auc_score(y == pos, proba[:, classes.index(pos)]))
        out["positive_label"] = pos
    else:
        p_, r_, f_, _ = precision_recall_fscore_support(
            y, pred, labels=present, average="macro", zero_division=0.0
        )
        if len(present) < 2:
            auc = float("nan")
        else:
            cols = [classes.index(c) for c in present]
            sub = proba[:, cols]
            sub = sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-12, None)
            auc = float(roc_auc_score(y, sub, multi_class="ovr", average="macro", labels=present))
    out.update(
        {
            "precision": float(p_),
            "recall": float(r_),
            "f1": float(f_),
            "auc": auc,
            "n_test": len(df),
        }
    )
    return out


def train_and_evaluate(
    train: Any, test: Any, config: ClassifierConfig, seed: int = 0
) -> dict[str, Any]:
    """Train on `train`, score on `test`; metrics plus the row counts and the config used."""
    model = train_classifier(train, config, seed)
    metrics = evaluate_classifier(model, test, config)
    metrics["n_train"] = len(to_pandas(train)) if not hasattr(train, "height") else train.height
    metrics["config"] = config.model_dump()
    return metrics
