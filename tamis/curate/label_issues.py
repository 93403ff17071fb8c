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

Rows with a null (or NaN) label are dropped before anything else (a null is not a class), counted
in `report["null_labels_dropped"]` with a warning; they are not in the output either.

The report's `model_check` compares the out-of-fold accuracy with always predicting the majority
class (skill and a one-sided binomial test, see `model_strength`); a weak model gets a warning,
because confident learning then flags many correct rows. With a known truth (`truth`, or the
`is_injected_noise` column `inject_label_noise` writes with `truth_column`) the report's
`detection` gives precision and recall of the flags.

Bad input: a missing label column, an all-null label or a single class are errors; classes with fewer
rows than `folds` reduce `folds` to the smallest class size (a warning, also in
`report["warnings"]`); a class with a single row is an error (drop or merge it first).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import polars as pl

from tamis.curate.label_features import (
    ModelName,
    canonical_order,
    check_label_dtype,
    choose_folds,
    drop_null_labels,
    embed_texts,
    feature_frame,
    make_model,
    out_of_fold_pred_probs,
    pred_probs_from_column,
    resolve_features,
)
from tamis.curate.noise import encode_labels
from tamis.errors import StepError
from tamis.tabular import make_classifier

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
    check_label_dtype(df, label, where=where)
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


MIN_SKILL = 0.2
TRUTH_COLUMN = "is_injected_noise"


def model_strength(
    y: np.ndarray, probs: np.ndarray, *, min_skill: float = MIN_SKILL, alpha: float = 0.01
) -> dict[str, Any]:
    """Is the out-of-fold model good enough for confident learning to be trusted?

    Confident learning calls a label wrong when the model confidently disagrees with it; a model
    barely better than always answering the majority class disagrees with many correct labels.
    `skill` = (accuracy - majority rate) / (1 - majority rate), the share of the majority
    baseline's errors the model avoids; `p_value` is the one-sided exact binomial test of
    "accuracy > majority rate". Weak: p_value >= `alpha` or skill < `min_skill`.
    """
    from scipy.stats import binomtest

    n = int(y.size)
    counts = np.bincount(y, minlength=probs.shape[1])
    correct = int((probs.argmax(axis=1) == y).sum())
    acc = correct / n if n else 0.0
    maj = float(counts.max() / n) if n else 1.0
    skill = (acc - maj) / (1.0 - maj) if maj < 1.0 else 0.0
    p_value = (
        float(binomtest(correct, n, maj, alternative="greater").pvalue) if 0 < maj < 1 else 1.0
    )
    why = []
    if skill <= 0:
        why.append("it is no better than always answering the majority class")
    elif skill < min_skill:
        why.append(
            f"it avoids only {skill:.0%} of the majority baseline's errors (min_skill {min_skill})"
        )
    if p_value >= alpha:
        why.append(
            f"it is not significantly better than that baseline (binomial p = {p_value:.3g})"
        )
    weak = bool(why)
    message = (
        "the out-of-fold model is too weak for confident learning to be trusted: accuracy"
        f" {acc:.3f} against {maj:.3f} for always predicting the majority class; "
        + " and ".join(why)
        + ". Many flagged rows are likely correct labels. fix: give better features (or"
        " `text`/`embedding_model`), try model: gbm, or flag and review instead of dropping"
        if weak
        else ""
    )
    return {
        "out_of_fold_accuracy": acc,
        "majority_class_rate": maj,
        "skill": skill,
        "p_value": p_value,
        "min_skill": min_skill,
        "weak": weak,
        "message": message,
    }


def resolve_truth(
    df: pl.DataFrame, truth: str | None, label: str, features: list[str] | None, where: str
) -> str | None:
    """The known-truth column, if any (explicit, or `is_injected_noise` when present)."""
    if truth is None:
        return TRUTH_COLUMN if TRUTH_COLUMN in df.columns and label != TRUTH_COLUMN else None
    if truth not in df.columns:
        raise StepError(
            f"truth column '{truth}' is not in the data",
            step=where,
            column=truth,
            field="truth",
            fix="set inject_label_noise's truth_column (or name an existing column), or leave"
            " truth out",
        )
    if truth == label or (features is not None and truth in features):
        raise StepError(
            f"truth column '{truth}' cannot also be the label or a feature",
            step=where,
            column=truth,
            field="truth",
            fix="remove it from `features`",
        )
    return truth


def truth_mask(df: pl.DataFrame, truth: str, label: str, where: str) -> np.ndarray:
    """Rows whose label is known to be wrong: a boolean column, or a true-label column."""
    s = df.get_column(truth)
    if s.dtype == pl.Boolean:
        return s.fill_null(False).to_numpy().astype(bool)
    lab = df.get_column(label)
    try:
        same = s.cast(lab.dtype, strict=True) if s.dtype != lab.dtype else s
        wrong = (same != lab).fill_null(False)
    except Exception as exc:
        raise StepError(
            f"truth column '{truth}' ({s.dtype}) is neither boolean nor comparable with the"
            f" label ({lab.dtype})",
            step=where,
            column=truth,
            field="truth",
            fix="a boolean column (true = label is wrong) or the true label",
        ) from exc
    return wrong.to_numpy().astype(bool)


def detection_scores(flagged: np.ndarray, wrong: np.ndarray, truth: str) -> dict[str, Any]:
    """Precision/recall/F1 of the flags against the rows known to be mislabelled."""
    tp = int((flagged & wrong).sum())
    fp = int((flagged & ~wrong).sum())
    fn = int((~flagged & wrong).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "truth_column": truth,
        "known_wrong": int(wrong.sum()),
        "flagged": int(flagged.sum()),
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


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
    exclude: tuple[str, ...] = (),
    class_names: list[str] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Out-of-fold predicted probabilities `(n, k)` and a description of how they were made.

    `class_names` (the label values, in code order) name the classes in errors and warnings.
    """
    say = progress or (lambda _msg: None)
    info: dict[str, Any] = {"warnings": []}
    if pred_probs is not None:
        info["model"] = f"precomputed column '{pred_probs}'"
        info["folds"] = None
        return pred_probs_from_column(df, pred_probs, n_classes, where=where), info
    names = class_names if class_names is not None else [str(i) for i in range(n_classes)]
    counts = {str(names[i]): int((y == i).sum()) for i in range(n_classes)}
    folds, warns = choose_folds(counts, folds, where=where, label=label)
    info["warnings"] += warns
    info["folds"] = folds
    exclude = (*exclude, *((pred_probs,) if pred_probs else ()))
    if embedding_model is not None:
        if text is None:
            raise StepError(
                "embedding_model needs a text column",
                step=where,
                field="text",
                fix="set `text` to the column to embed",
            )
        if text not in df.columns:
            resolve_features(df, label=label, features=None, text=text, where=where)
        say("embedding texts")
        texts = df.get_column(text).cast(pl.String).fill_null("").to_list()
        x: Any = embed_texts(texts, embedding_model)
        used = [text]
        estimator: Any = make_classifier("logreg", seed=seed, max_iter=1000)
        info["model"] = f"embeddings({embedding_model}) + logistic regression"
    else:
        spec = resolve_features(
            df, label=label, features=features, text=text, exclude=exclude, where=where
        )
        x = feature_frame(df, spec)
        used = spec.columns
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
        x,
        y,
        estimator,
        folds=folds,
        seed=seed,
        n_jobs=n_jobs,
        blas_threads=blas_threads,
        # folds follow the content of what the model sees, not the row order
        order=canonical_order(df.select(used).with_columns(pl.Series("\0y", y))),
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
    truth: str | None = None,
    min_skill: float = MIN_SKILL,
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
        truth: a column with the known truth (boolean: the label is wrong; or the true label):
            the report gets detection precision/recall. Default: `is_injected_noise` when the
            data has it (written by `inject_label_noise` with `truth_column`). Never a feature.
        min_skill: below this skill of the out-of-fold model over the majority class (see
            `model_strength`) a warning says the flags are not to be trusted.

    Returns:
        `(df_out, report)`; `report` is JSON-able except `report["tables"]` (Polars frames:
        `label_issues`, one row per flagged row with `row`, label, suggestion and score).
    """
    from tamis.curate.label_features import import_cleanlab

    import_cleanlab()  # without its process-wide warnings.filterwarnings("ignore")
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
    rows_in = df.height
    if label not in df.columns:
        check_labels(df, label, where)
    check_label_dtype(df, label, where=where)
    df, n_null, null_warns = drop_null_labels(df, label, where=where, purpose="label issues")
    truth_col = resolve_truth(df, truth, label, features, where)
    if df.height == 0:
        raise StepError(
            f"label column '{label}' is entirely null: no labelled row to check",
            step=where,
            column=label,
            fix="set `label` to the column holding the class",
        )
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
        exclude=(truth_col,) if truth_col else (),
        class_names=[str(c) for c in classes.to_list()],
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
    strength = model_strength(y, probs, min_skill=min_skill)
    warns = null_warns + info["warnings"]
    if strength["weak"]:
        warns.append(strength["message"])
        warnings.warn(strength["message"], stacklevel=2)
    detection = None
    if truth_col is not None:
        detection = detection_scores(issues, truth_mask(df, truth_col, label, where), truth_col)
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
        "rows_in": rows_in,
        "rows_out": out.height,
        "null_labels_dropped": n_null,
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
        "model_check": {k: v for k, v in strength.items() if k != "message"},
        "per_class": per_class,
        "top_issues": table.head(top).to_dicts(),
        "warnings": warns,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if detection is not None:
        report["detection"] = detection
    if "features" in info:
        report["features"] = info["features"]
    report["tables"] = {"label_issues": table}
    return out, report
