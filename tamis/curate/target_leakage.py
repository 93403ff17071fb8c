"""Target leakage inside one dataset: single features that predict the label almost perfectly.

For each feature: numeric values are cut into (at most `bins`) quantile bins, other values are taken
as categories (nulls are a category of their own); each row gets the out-of-fold share of every class
among rows of its bin (k-fold target encoding, smoothed toward the class prior), and the AUC of that
encoding against the label is computed (macro one-vs-rest for more than two classes). A feature with
AUC >= threshold is flagged. Mutual information (normalised by the label entropy) is reported
beside it. Rows with a null (or NaN) label are left out: a null label is not a class (kept, one
blank row turned adult's binary label into a three-class problem and moved every AUC). Rows are
dealt to folds within each (bin, class) cell, so the figures never depend on the order of the rows.
Everything is counting with NumPy; no model is fitted, so 100 features x 1M rows is cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from tamis.curate.label_column import check_label_dtype, null_label_mask
from tamis.errors import DataError

MAX_CLASSES = 50


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
    """Dense bin ids: quantile bins for numbers with many values (0 = null/NaN), else categories."""
    s = df[feature]
    if s.dtype.is_nested() or s.dtype == pl.Object:
        # lists/structs: each distinct value is a category (row hashes; nulls are one value)
        return np.unique(s.hash(seed=0).to_numpy(), return_inverse=True)[1].astype(np.int64)
    if s.dtype.is_numeric() and s.n_unique() > bins:
        v = s.cast(pl.Float64).fill_null(float("nan")).to_numpy()
        ok = ~np.isnan(v)
        quantiles = np.linspace(0, 1, bins + 1)[1:-1]
        edges = np.unique(np.quantile(v[ok], quantiles)) if ok.any() else np.zeros(0)
        code = np.zeros(v.size, dtype=np.int64)
        code[ok] = np.searchsorted(edges, v[ok], side="right") + 1
        return code
    phys = (
        s.cast(pl.String)
        .fill_null("\x00null")
        .cast(pl.Categorical)
        .to_physical()
        .to_numpy()
        .astype(np.int64)
    )
    return np.unique(phys, return_inverse=True)[1].astype(np.int64)


def _grouped_auc(score: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
    """AUC (ties count one half) from per-cell scores and positive/negative counts."""
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    uniq, inv = np.unique(score, return_inverse=True)
    p = np.bincount(inv, weights=pos, minlength=uniq.size)
    q = np.bincount(inv, weights=neg, minlength=uniq.size)
    below = np.cumsum(q) - q
    return float(((p * below).sum() + 0.5 * (p * q).sum()) / (n_pos * n_neg))


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
) -> pl.DataFrame:
    """One row per feature: feature, auc (with a 95% Hanley-McNeil CI: ci_low, ci_high),
    normalized_mutual_info, n, flagged (auc >= threshold), note."""
    if label not in df.columns:
        raise DataError("label column not found", column=label, field="label")
    check_label_dtype(df, label)
    # a null label is not a class: rows without one are left out (find_leakage reports how many)
    df = df.filter(pl.Series(~null_label_mask(df[label])))
    y_s = df[label]
    if y_s.len() == 0:
        raise DataError(
            "label column is entirely null",
            column=label,
            field="label",
            fix="name the column holding the class in `label`",
        )
    note = None
    if y_s.dtype.is_float() and y_s.n_unique() > MAX_CLASSES:
        y_s = (y_s > y_s.median()).alias(label)
        note = "continuous label binarised at its median"
    # classes in the order of their values (not of first appearance): nothing depends on row order
    classes, y = np.unique(y_s.cast(pl.String).to_numpy().astype(str), return_inverse=True)
    k = classes.size
    if k < 2:
        note = "label has a single class: no AUC"
    if k > MAX_CLASSES:
        raise DataError(
            f"label has {k} classes; target leakage needs at most {MAX_CLASSES}",
            column=label,
            field="label",
            fix="set target_auc_threshold: null to skip it, or give a class label",
        )
    n = y.size
    # Folds are dealt within each (bin, class) cell, round-robin from a start that depends on the
    # seed and the class: the rows of a cell are alike for this feature, so the counts per fold
    # (all the encoding uses) depend only on the cell's size, never on the order of the rows.
    start = (seed + np.arange(k)) % folds
    later = (np.arange(folds)[:, None] - start[None, :]) % folds  # (fold, class)
    prior = np.bincount(y, minlength=k) / n
    h_y = float(-(prior[prior > 0] * np.log(prior[prior > 0])).sum())
    rows = []
    for feat in features:
        if feat == label:
            continue
        x = _codes(df, feat, bins)
        m = int(x.max()) + 1 if x.size else 1
        size = np.bincount(x * k + y, minlength=m * k).reshape(m, k)
        cells = size[None] // folds + (later[:, None, :] < (size % folds)[None])
        total = cells.sum(axis=0).astype(np.float64)
        # out-of-fold class counts of every (fold, bin) cell, and its smoothed encoding
        oof = total[None, :, :] - cells
        enc = (oof + smoothing * prior) / (oof.sum(axis=2, keepdims=True) + smoothing)
        cell_n = cells.sum(axis=2).reshape(-1).astype(np.float64)
        counts = np.bincount(y, minlength=k)
        aucs, ses = [], []
        for c in range(1, 2) if k == 2 else range(k):
            pos = cells[:, :, c].reshape(-1).astype(np.float64)
            a = _grouped_auc(enc[:, :, c].reshape(-1), pos, cell_n - pos)
            aucs.append(a)
            ses.append(_auc_se(a, int(counts[c]), n - int(counts[c])))
        ok = ~np.isnan(aucs)
        auc = float(np.mean(np.asarray(aucs)[ok])) if ok.any() else float("nan")
        se = float(np.nanmean(np.asarray(ses)[ok])) if ok.any() else float("nan")
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
