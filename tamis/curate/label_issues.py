"""Find mislabelled rows with confident learning (cleanlab) on out-of-fold predicted probabilities.

    out, report = find_label_issues(df, label="y")                       # tabular, all columns
    out, report = find_label_issues(df, label="Label", text="SMS")       # text: TF-IDF + logreg
    out, report = find_label_issues(df, label="y", pred_probs="probs")   # your own model's probs
    out, report = find_label_issues(df, label="y", action="drop")        # cleaned data

Steps: K-fold cross-validation (stratified, shuffled with `seed`) of the model gives every row a
predicted-probability vector from a model that never saw it; `cleanlab.filter.find_label_issues`
(with `filter_by`) marks the likely label errors; `cleanlab.rank.get_label_quality_scores`
(self-confidence) gives each row a score in [0, 1] (low = likely wrong).

Adds `is_label_issue` (bool), `label_quality_score` (float) and `suggested_label` (the model's most
likely class, same dtype as the label). `action`: `flag` keeps every row; `drop` removes the
flagged rows; `relabel` replaces the flagged rows' label with `suggested_label`.

Bad input: a missing label column, null labels or a single class are errors; classes with fewer
rows than `folds` reduce `folds` to the smallest class size (a warning, also in
`report["warnings"]`); a class with a single row is an error (drop or merge it first).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import polars as pl

from tamis.curate.label_features import (
    ModelName,
    choose_folds,
    embed_texts,
    feature_frame,
    make_model,
    out_of_fold_pred_probs,
    pred_probs_from_column,
    resolve_features,
)
from tamis.curate.noise import encode_labels
from tamis.errors import StepError

FilterBy = Literal[
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_normalized_margin",
    "low_self_confidence",
]
Action = Literal["flag", "drop", "relabel"]
ISSUE_COLUMNS = ("is_label_issue", "label_quality_score", "suggested_label")


def check_labels(df: pl.DataFrame, label: str, where: str) -> pl.Series:
    """The label column, checked: present, no nulls, at least two classes."""
    if label not in df.columns:
        raise StepError(
            f"label column '{label}' is not in the data (columns: {', '.join(df.columns[:20])})",
            step=where,
            column=label,
            fix="set `label` to the column holding the class",
        )
    s = df.get_column(label)
    if s.null_count():
        raise StepError(
            f"label column '{label}' has {s.null_count()} null value(s)",
            step=where,
            column=label,
            fix="drop unlabelled rows first (e.g. a filter step), or fill them",
        )
    if s.n_unique() < 2:
        raise StepError(
            f"label column '{label}' has a single class; label issues need at least two",
            step=where,
            column=label,
            fix="check the label column, or skip this step",
        )
    return s


def compute_pred_probs(
    df: pl.DataFrame,
    *,
    label: str,
    y: np.ndarray,
    n_classes: int,
    features: list[str] | None = None,
    text: str | None = None,
    pred_probs: str | None = None,
    model: ModelName = "auto",
    embedding_model: str | None = None,
    folds: int = 5,
    seed: int = 0,
    n_jobs: int | None = None,
    blas_threads: int | None = 1,
    where: str = "label_issues",
    progress: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Out-of-fold predicted probabilities `(n, k)` and a description of how they were made."""
    say = progress or (lambda _msg: None)
    info: dict[str, Any] = {"warnings": []}
    if pred_probs is not None:
        info["model"] = f"precomputed column '{pred_probs}'"
        info["folds"] = None
        return pred_probs_from_column(df, pred_probs, n_classes, where=where), info
    counts = {str(c): int((y == i).sum()) for i, c in enumerate(range(n_classes))}
    folds, warns = choose_folds(counts, folds, where=where, label=label)
    info["warnings"] += warns
    info["folds"] = folds
    exclude = (pred_probs,) if pred_probs else ()
    if embedding_model is not None:
        if text is None:
            raise StepError(
                "embedding_model needs a text column",
                step=where,
                field="text",
                fix="set `text` to the column to embed",
            )
        from sklearn.linear_model import LogisticRegression

        if text not in df.columns:
            resolve_features(df, label=label, features=None, text=text, where=where)
        say("embedding texts")
        texts = df.get_column(text).cast(pl.String).fill_null("").to_list()
        x: Any = embed_texts(texts, embedding_model)
        estimator: Any = LogisticRegression(max_iter=1000)
        info["model"] = f"embeddings({embedding_model}) + logistic regression"
    else:
        spec = resolve_features(
            df, label=label, features=features, text=text, exclude=exclude, where=where
        )
        x = feature_frame(df, spec)
        estimator = make_model(spec, model, seed=seed, n_rows=df.height)
        kind = "gbm" if model == "gbm" else "logreg"
        info["model"] = (
            "tfidf + logistic regression"
            if spec.text and kind == "logreg"
            else {"logreg": "one-hot + logistic regression", "gbm": "hist gradient boosting"}[kind]
        )
        info["features"] = spec.columns
    say(f"{folds}-fold cross-validation")
    probs = out_of_fold_pred_probs(
        x, y, estimator, folds=folds, seed=seed, n_jobs=n_jobs, blas_threads=blas_threads
    )
    return probs, info


def find_label_issues(
    df: pl.DataFrame,
    *,
    label: str,
    features: list[str] | None = None,
    text: str | None = None,
    pred_probs: str | None = None,
    model: ModelName = "auto",
    embedding_model: str | None = None,
    folds: int = 5,
    filter_by: FilterBy = "prune_by_noise_rate",
    action: Action = "flag",
    seed: int = 0,
    n_jobs: int | None = None,
    blas_threads: int | None = 1,
    top: int = 20,
    progress: Callable[[str], None] | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Flag, drop or relabel likely label errors.

    Args:
        df: the data (a Polars frame).
        label: the label column.
        features: feature columns; default every column except the label (and existing issue
            columns), or none when `text` is given.
        text: a text column (TF-IDF + logistic regression, or `embedding_model`).
        pred_probs: a list column of precomputed out-of-fold probabilities (sorted class order);
            no model is fitted then.
        model: `auto` (logistic regression), `logreg` or `gbm` (histogram gradient boosting).
        embedding_model: a local (sentence-)transformer directory to embed `text` with.
        folds: cross-validation folds (reduced, with a warning, when a class is smaller).
        filter_by: cleanlab's `filter_by` method.
        action: `flag`, `drop` or `relabel`.
        seed: fold assignment and model randomness.
        n_jobs: parallel folds (None = sequential).
        blas_threads: BLAS threads during the fits (1 by default: faster for these small
            models on a shared machine; None = the library default).
        top: how many of the worst rows the report lists.

    Returns:
        `(df_out, report)`; `report` is JSON-able except `report["tables"]` (Polars frames:
        `label_issues`, one row per flagged row with `row`, label, suggestion and score).
    """
    import cleanlab.filter
    import cleanlab.rank

    where = "label_issues"
    if action not in ("flag", "drop", "relabel"):
        raise StepError(
            f"unknown action {action!r}",
            step=where,
            field="action",
            fix="use flag, drop or relabel",
        )
    if folds < 2:
        raise StepError(
            f"folds must be at least 2, got {folds}", step=where, field="folds", fix="e.g. folds: 5"
        )
    t0 = time.perf_counter()
    labels = check_labels(df, label, where)
    classes, y = encode_labels(labels)
    k = len(classes)
    probs, info = compute_pred_probs(
        df,
        label=label,
        y=y,
        n_classes=k,
        features=features,
        text=text,
        pred_probs=pred_probs,
        model=model,
        embedding_model=embedding_model,
        folds=folds,
        seed=seed,
        n_jobs=n_jobs,
        blas_threads=blas_threads,
        where=where,
        progress=progress,
    )
    if progress:
        progress("confident learning")
    issues = cleanlab.filter.find_label_issues(y, probs, filter_by=filter_by)
    scores = cleanlab.rank.get_label_quality_scores(y, probs)
    predicted = probs.argmax(axis=1)
    suggested = classes.gather(pl.Series(predicted)).alias("suggested_label")
    base = df.drop([c for c in ISSUE_COLUMNS if c in df.columns])
    out = base.with_columns(
        pl.Series("is_label_issue", issues, dtype=pl.Boolean),
        pl.Series("label_quality_score", scores, dtype=pl.Float64),
        suggested,
    )
    rows = np.flatnonzero(issues)
    order = rows[np.argsort(scores[rows], kind="stable")]
    table = pl.DataFrame(
        {
            "row": pl.Series(order, dtype=pl.Int64),
            "label": labels.gather(pl.Series(order)),
            "suggested_label": suggested.gather(pl.Series(order)),
            "label_quality_score": scores[order],
        }
    )
    if text is not None and text in df.columns:
        table = table.with_columns(df.get_column(text).gather(pl.Series(order)).alias(text))
    n_issues = int(issues.sum())
    if action == "drop":
        out = out.filter(~pl.col("is_label_issue"))
    elif action == "relabel":
        out = out.with_columns(
            pl.when(pl.col("is_label_issue"))
            .then(pl.col("suggested_label"))
            .otherwise(pl.col(label))
            .cast(labels.dtype)
            .alias(label)
        )
    per_class = []
    for i, c in enumerate(classes.to_list()):
        in_class = y == i
        per_class.append(
            {
                "class": str(c),
                "n": int(in_class.sum()),
                "issues": int((issues & in_class).sum()),
                "mean_label_quality": float(scores[in_class].mean()),
            }
        )
    report: dict[str, Any] = {
        "rows_in": df.height,
        "rows_out": out.height,
        "label_issues": n_issues,
        "issue_rate": n_issues / df.height if df.height else 0.0,
        "action": action,
        "relabelled": n_issues if action == "relabel" else 0,
        "dropped": n_issues if action == "drop" else 0,
        "filter_by": filter_by,
        "model": info["model"],
        "folds": info["folds"],
        "classes": [str(c) for c in classes.to_list()],
        "out_of_fold_accuracy": float((predicted == y).mean()),
        "per_class": per_class,
        "top_issues": table.head(top).to_dicts(),
        "warnings": info["warnings"],
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if "features" in info:
        report["features"] = info["features"]
    report["tables"] = {"label_issues": table}
    return out, report
