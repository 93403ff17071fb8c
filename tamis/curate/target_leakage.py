"""Target leakage inside one dataset: single features that predict the label almost perfectly.

For each feature: numeric values are cut into (at most `bins`) quantile bins, other values are taken
as categories (nulls are a category of their own); each row gets the out-of-fold share of every class
among rows of its bin (k-fold target encoding, smoothed toward the class prior), and the AUC of that
encoding against the label is computed (macro one-vs-rest for more than two classes). A feature with
AUC >= threshold is flagged. Mutual information (normalised by the label entropy) is reported
beside it. Everything is counting with NumPy; no model is fitted, so 100 features x 1M rows is cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy.stats import rankdata

from tamis.errors import StepError

MAX_CLASSES = 50


def _auc(score: np.ndarray, positive: np.ndarray) -> float:
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _auc_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC."""
    if n_pos == 0 or n_neg == 0 or np.isnan(auc):
        return float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (
        n_pos * n_neg
    )
    return float(np.sqrt(max(var, 0.0)))


def _codes(df: pl.DataFrame, feature: str, bins: int) -> np.ndarray:
    s = df[feature]
    if s.dtype.is_numeric() and s.n_unique() > bins:
        rank = s.cast(pl.Float64).rank("min")
        code = ((rank - 1) * bins / s.len()).floor().fill_null(-1).fill_nan(-1)
        return code.cast(pl.Int64).to_numpy() + 1
    return (
        s.cast(pl.String)
        .fill_null("\x00null")
        .cast(pl.Categorical)
        .to_physical()
        .to_numpy()
        .astype(np.int64)
    )


def target_leakage(
    df: pl.DataFrame,
    label: str,
    features: Sequence[str],
    *,
    threshold: float = 0.99,
    folds: int = 5,
    bins: int = 32,
    smoothing: float = 1.0,
    seed: int = 0,
    step: str = "leakage",
) -> pl.DataFrame:
    """One row per feature: feature, auc (with a 95% Hanley-McNeil CI: ci_low, ci_high),
    normalized_mutual_info, n, flagged (auc >= threshold), note."""
    if label not in df.columns:
        raise StepError("label column not found", step=step, column=label, field="label")
    y_s = df[label]
    if y_s.null_count() == y_s.len():
        raise StepError("label column is entirely null", step=step, column=label, field="label")
    note = None
    if y_s.dtype.is_float() and y_s.n_unique() > MAX_CLASSES:
        y_s = (y_s > y_s.median()).alias(label)
        note = "continuous label binarised at its median"
    y_codes = (
        y_s.cast(pl.String).fill_null("\x00null").cast(pl.Categorical).to_physical().to_numpy()
    )
    classes, y = np.unique(y_codes, return_inverse=True)
    k = classes.size
    if k > MAX_CLASSES:
        raise StepError(
            f"label has {k} classes; target leakage needs at most {MAX_CLASSES}",
            step=step,
            column=label,
            field="label",
            fix="set target_auc_threshold: null to skip it, or give a class label",
        )
    n = y.size
    rng = np.random.default_rng(seed)
    fold = rng.permutation(n) % folds
    prior = np.bincount(y, minlength=k) / n
    h_y = float(-(prior[prior > 0] * np.log(prior[prior > 0])).sum())
    rows = []
    for feat in features:
        if feat == label:
            continue
        x = _codes(df, feat, bins)
        _, x = np.unique(x, return_inverse=True)
        m = int(x.max()) + 1 if x.size else 1
        total = np.bincount(x * k + y, minlength=m * k).reshape(m, k).astype(np.float64)
        per_fold = np.bincount((fold * m + x) * k + y, minlength=folds * m * k).reshape(folds, m, k)
        oof = total[x] - per_fold[fold, x]  # counts of each class in the row's bin, other folds
        enc = (oof + smoothing * prior) / (oof.sum(axis=1, keepdims=True) + smoothing)
        counts = np.bincount(y, minlength=k)
        if k == 2:
            auc = _auc(enc[:, 1], y == 1)
            se = _auc_se(auc, int(counts[1]), int(counts[0]))
        else:
            aucs = [_auc(enc[:, c], y == c) for c in range(k)]
            auc = float(np.nanmean(aucs))
            ses = [_auc_se(a, int(counts[c]), n - int(counts[c])) for c, a in enumerate(aucs)]
            se = float(np.nanmean(ses))
        joint = total / n
        px = joint.sum(axis=1, keepdims=True)
        nz = joint > 0
        mi = float((joint[nz] * np.log(joint[nz] / (px @ prior[None, :])[nz])).sum())
        rows.append(
            {
                "feature": feat,
                "auc": round(auc, 6),
                "ci_low": round(max(0.0, auc - 1.96 * se), 6),
                "ci_high": round(min(1.0, auc + 1.96 * se), 6),
                "normalized_mutual_info": round(mi / h_y, 6) if h_y > 0 else 0.0,
                "n": n,
                "flagged": bool(auc >= threshold),
                "note": note,
            }
        )
    schema = {
        "feature": pl.String,
        "auc": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "normalized_mutual_info": pl.Float64,
        "n": pl.Int64,
        "flagged": pl.Boolean,
        "note": pl.String,
    }
    return pl.DataFrame(rows, schema=schema).sort("auc", descending=True, nulls_last=True)
