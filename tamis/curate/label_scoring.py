"""How far to trust label-issue flags: the out-of-fold model's skill, and a known truth.

- `model_strength`: is the model better enough than always answering the majority class for
  confident learning to be trusted (skill and a one-sided binomial test)?
- `resolve_truth` / `truth_mask` / `detection_scores`: with a column holding the known truth
  (`is_injected_noise` from `inject_label_noise`, or the true label), the flags' precision and
  recall.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from tamis.errors import DataError

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
    df: pl.DataFrame, truth: str | None, label: str, features: list[str] | None
) -> str | None:
    """The known-truth column, if any (explicit, or `is_injected_noise` when present)."""
    if truth is None:
        return TRUTH_COLUMN if TRUTH_COLUMN in df.columns and label != TRUTH_COLUMN else None
    if truth not in df.columns:
        raise DataError(
            f"truth column '{truth}' is not in the data",
            column=truth,
            field="truth",
            fix="set inject_label_noise's truth_column (or name an existing column), or leave"
            " truth out",
        )
    if truth == label or (features is not None and truth in features):
        raise DataError(
            f"truth column '{truth}' cannot also be the label or a feature",
            column=truth,
            field="truth",
            fix="remove it from `features`",
        )
    return truth


def truth_mask(df: pl.DataFrame, truth: str, label: str) -> np.ndarray:
    """Rows whose label is known to be wrong: a boolean column, or a true-label column."""
    s = df.get_column(truth)
    if s.dtype == pl.Boolean:
        return s.fill_null(False).to_numpy().astype(bool)
    lab = df.get_column(label)
    try:
        same = s.cast(lab.dtype, strict=True) if s.dtype != lab.dtype else s
        wrong = (same != lab).fill_null(False)
    except Exception as exc:
        raise DataError(
            f"truth column '{truth}' ({s.dtype}) is neither boolean nor comparable with the"
            f" label ({lab.dtype})",
            column=truth,
            field="truth",
            fix="a boolean column (true = label is wrong) or the true label",
        ) from exc
    return wrong.to_numpy().astype(bool)


def detection_scores(flagged: np.ndarray, wrong: np.ndarray, truth: str) -> dict[str, Any]:
    """Precision/recall/F1 of the flags against the rows known to be mislabelled."""
    scores = precision_recall(flagged, wrong)
    return {
        "truth_column": truth,
        "known_wrong": int(wrong.sum()),
        "flagged": int(flagged.sum()),
        **{k: scores[k] for k in ("true_positives", "false_positives", "false_negatives")},
        **{k: scores[k] for k in ("precision", "recall", "f1")},
    }


def precision_recall(flagged: np.ndarray, wrong: np.ndarray) -> dict[str, Any]:
    """Counts and precision/recall/F1 of boolean flags against the rows known to be wrong."""
    tp = int((flagged & wrong).sum())
    fp = int((flagged & ~wrong).sum())
    fn = int((~flagged & wrong).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
    }
