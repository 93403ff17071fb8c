"""Find mislabelled rows with confident learning (cleanlab) on out-of-fold predicted probabilities.

    C = LabelIssuesConfig
    out, report = find_label_issues(df, C(label="y"))                      # tabular, all columns
    out, report = find_label_issues(df, C(label="Label", text="SMS"))      # text: TF-IDF + logreg
    out, report = find_label_issues(df, C(label="y", pred_probs="probs"))  # your own model's probs
    out, report = find_label_issues(df, C(label="y", action="drop"))       # cleaned data

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
from pydantic import Field

from tamis.curate.label_column import check_labels, encode_labels, labelled_rows
from tamis.curate.label_features import import_cleanlab
from tamis.curate.label_scoring import (
    MIN_SKILL,
    detection_scores,
    model_strength,
    resolve_truth,
    truth_mask,
)
from tamis.curate.pred_probs import LabelModelConfig, compute_pred_probs

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


class LabelIssuesConfig(LabelModelConfig):
    """How `find_label_issues` finds and handles mislabelled rows (the `label_issues` params)."""

    label: str = Field(description="the label column")
    filter_by: FilterBy = Field(
        default="prune_by_noise_rate", description="cleanlab find_label_issues filter_by"
    )
    action: Action = Field(
        default="flag",
        description="flag keeps rows; drop removes issues; relabel uses suggested_label",
    )
    n_jobs: int | None = Field(default=None, description="parallel folds (None = sequential)")
    blas_threads: int | None = Field(
        default=1, description="BLAS threads during the fits (None = library default)"
    )
    top: int = Field(default=20, ge=0, description="worst rows listed in the report")
    truth: str | None = Field(
        default=None,
        description="a column with the known truth (boolean: label is wrong, or the true label):"
        " the report gives detection precision/recall; default is_injected_noise when present",
    )
    min_skill: float = Field(
        default=MIN_SKILL,
        ge=0.0,
        le=1.0,
        description="warn when the out-of-fold model's skill over the majority class is below this",
    )


def issue_columns_schema(schema: pl.Schema, label: str) -> pl.Schema:
    """The input schema with the three issue columns (replaced when already there) at the end."""
    out: dict[str, Any] = {c: t for c, t in schema.items() if c not in ISSUE_COLUMNS}
    out["is_label_issue"] = pl.Boolean
    out["label_quality_score"] = pl.Float64
    out["suggested_label"] = schema.get(label) or pl.Unknown()
    return pl.Schema(out)


def find_label_issues(
    df: pl.DataFrame,
    config: LabelIssuesConfig,
    *,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Flag, drop or relabel likely label errors (see the module docstring and the config).

    `seed` fixes the fold assignment and the model's randomness. Returns `(df_out, report)`;
    `report` is JSON-able except `report["tables"]` (Polars frames: `label_issues`, one row per
    flagged row with `row`, label, suggestion and score).
    """
    import_cleanlab()  # without its process-wide warnings.filterwarnings("ignore")
    import cleanlab.filter
    import cleanlab.rank

    t0 = time.perf_counter()
    label = config.label
    rows_in = df.height
    df, n_null, null_warns = labelled_rows(df, label, purpose="label issues")
    truth_col = resolve_truth(df, config.truth, label, config.features)
    labels = check_labels(df, label)
    classes, y = encode_labels(labels)
    probs, info = compute_pred_probs(
        df,
        config,
        y=y,
        n_classes=len(classes),
        seed=seed,
        n_jobs=config.n_jobs,
        blas_threads=config.blas_threads,
        progress=progress,
        exclude=(truth_col,) if truth_col else (),
        class_names=[str(c) for c in classes.to_list()],
    )
    if progress:
        progress("confident learning")
    issues = cleanlab.filter.find_label_issues(y, probs, filter_by=config.filter_by)
    scores = cleanlab.rank.get_label_quality_scores(y, probs)
    predicted = probs.argmax(axis=1)
    suggested = classes.gather(pl.Series(predicted)).alias("suggested_label")
    base = df.drop([c for c in ISSUE_COLUMNS if c in df.columns])
    out = base.with_columns(
        pl.Series("is_label_issue", issues, dtype=pl.Boolean),
        pl.Series("label_quality_score", scores, dtype=pl.Float64),
        suggested,
    )
    table = _issue_table(df, config.text, labels, suggested, issues, scores)
    strength = model_strength(y, probs, min_skill=config.min_skill)
    warns = null_warns + info["warnings"]
    if strength["weak"]:
        warns.append(strength["message"])
        warnings.warn(strength["message"], stacklevel=2)
    out = _apply_action(out, config.action, label, labels.dtype)
    n_issues = int(issues.sum())
    report: dict[str, Any] = {
        "rows_in": rows_in,
        "rows_out": out.height,
        "null_labels_dropped": n_null,
        "label_issues": n_issues,
        "issue_rate": n_issues / df.height if df.height else 0.0,
        "action": config.action,
        "relabelled": n_issues if config.action == "relabel" else 0,
        "dropped": n_issues if config.action == "drop" else 0,
        "filter_by": config.filter_by,
        "model": info["model"],
        "folds": info["folds"],
        "classes": [str(c) for c in classes.to_list()],
        "out_of_fold_accuracy": float((predicted == y).mean()),
        "model_check": {k: v for k, v in strength.items() if k != "message"},
        "per_class": _per_class(classes, y, issues, scores),
        "top_issues": table.head(config.top).to_dicts(),
        "warnings": warns,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if truth_col is not None:
        report["detection"] = detection_scores(issues, truth_mask(df, truth_col, label), truth_col)
    if "features" in info:
        report["features"] = info["features"]
    report["tables"] = {"label_issues": table}
    return out, report


def _issue_table(
    df: pl.DataFrame,
    text: str | None,
    labels: pl.Series,
    suggested: pl.Series,
    issues: np.ndarray,
    scores: np.ndarray,
) -> pl.DataFrame:
    """One row per flagged row, worst first: row, label, suggested_label, score (and the text)."""
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
    return table


def _apply_action(out: pl.DataFrame, action: Action, label: str, dtype: Any) -> pl.DataFrame:
    """`flag` keeps every row; `drop` removes the flagged ones; `relabel` takes the suggestion."""
    if action == "drop":
        return out.filter(~pl.col("is_label_issue"))
    if action == "relabel":
        return out.with_columns(
            pl.when(pl.col("is_label_issue"))
            .then(pl.col("suggested_label"))
            .otherwise(pl.col(label))
            .cast(dtype)
            .alias(label)
        )
    return out


def _per_class(
    classes: pl.Series, y: np.ndarray, issues: np.ndarray, scores: np.ndarray
) -> list[dict[str, Any]]:
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
    return per_class
