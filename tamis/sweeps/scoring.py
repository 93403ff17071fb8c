"""A cell's figures from its stored predictions (`predictions.py`) on resampled test rows.

`weighted_metrics` computes the cell's figures under row weights (a bootstrap replicate is the
weight vector of how often each row was drawn), vectorised over many replicates at once:

- accuracy;
- `binary` mode (two classes; the positive class is the recipe's positive/minority label):
  precision, recall and F1 of the positive class, ROC AUC and average precision of its score;
- `macro` mode (more classes): precision, recall, F1 averaged over the labels present in the full
  test set (`zero_division` = 0, as scikit-learn), one-vs-rest ROC AUC and average precision of the
  scores renormalised over those labels, averaged over the labels defined in the replicate.

Weighted ROC AUC is the Mann-Whitney statistic (ties count one half) and average precision is
scikit-learn's step-wise sum over distinct thresholds: with integer weights both equal
`sklearn.metrics.roc_auc_score` / `average_precision_score` on the rows repeated (tests check it).
"""

from __future__ import annotations

import numpy as np

from tamis.sweeps.predictions import CellPredictions

#: elements of a weight matrix processed at once (replicates x rows; float32: 16 MB)
CHUNK_ELEMENTS = 4_000_000


# --------------------------------------------------------------------------- weighted figures
# Weights are held transposed, `wt` = rows x replicates (C order): gathering rows and summing
# along rows then runs over contiguous memory for every replicate at once.


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _cumsum_rows(a: np.ndarray) -> np.ndarray:
    """Running sums down the rows, with a zero row first: out[i] = a[:i].sum(axis=0).

    numpy's cumsum along axis 0 of a C-ordered array walks memory with a stride (3x slower
    here than adding whole rows, which are contiguous), so wide arrays are summed row by row."""
    out = np.empty((a.shape[0] + 1, a.shape[1]), dtype=a.dtype)
    out[0] = 0
    if a.shape[1] < 64:
        np.cumsum(a, axis=0, out=out[1:])
        return out
    for i in range(a.shape[0]):
        np.add(out[i], a[i], out=out[i + 1])
    return out


def _ranking(wt: np.ndarray, positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, ...]:
    """Descending-score cumulative weights at each positive row's tie group: total weight and
    positive weight through the group's end and before its start, and the positives' weights."""
    order = np.argsort(-score, kind="stable")
    s = score[order]
    pos = positive[order]
    n = s.size
    new = np.ones(n, dtype=bool)
    new[1:] = s[1:] != s[:-1]
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:] - 1, n - 1)
    gid = np.cumsum(new) - 1
    p_idx = np.flatnonzero(pos)
    st, en = starts[gid[p_idx]], ends[gid[p_idx]]
    # counts are integers: float32 sums are exact below 2**24 rows and halve the memory traffic
    ws = wt[order].astype(np.float32, copy=False)
    all_cum = _cumsum_rows(ws)
    wp = ws[p_idx]
    pos_cum = _cumsum_rows(wp)
    pos_end = pos_cum[np.searchsorted(p_idx, en, side="right")]
    pos_before = pos_cum[np.searchsorted(p_idx, st, side="left")]
    f8 = np.float64
    return (
        all_cum[en + 1].astype(f8),
        all_cum[st].astype(f8),
        pos_end.astype(f8),
        pos_before.astype(f8),
        wp.astype(f8),
        all_cum[n].astype(f8),
        pos_cum[-1].astype(f8),
    )


def _auc_ap(wt: np.ndarray, positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, ...]:
    """ROC AUC (weighted Mann-Whitney, ties one half) and average precision per replicate."""
    all_end, all_before, pos_end, pos_before, wp, total, n_pos = _ranking(wt, positive, score)
    n_neg = total - n_pos
    neg_end = all_end - pos_end  # negatives scored at or above the positive
    neg_before = all_before - pos_before  # ... strictly above
    num = np.sum(wp * (n_neg - 0.5 * neg_end - 0.5 * neg_before), axis=0)
    den = n_pos * n_neg
    auc = np.full(wt.shape[1], np.nan)
    np.divide(num, den, out=auc, where=den > 0)
    ap = np.full(wt.shape[1], np.nan)
    np.divide(np.sum(wp * _safe_div(pos_end, all_end), axis=0), n_pos, out=ap, where=n_pos > 0)
    return auc, ap


def weighted_auc(w: np.ndarray, positive: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC AUC per row of weights `w` (replicates x rows); NaN without both classes."""
    return _auc_ap(np.ascontiguousarray(np.asarray(w).T, dtype=np.float32), positive, score)[0]


def weighted_average_precision(
    w: np.ndarray, positive: np.ndarray, score: np.ndarray
) -> np.ndarray:
    """Average precision per row of weights: over the positives, weight x precision at their
    score threshold (ties included), over the positive weight (scikit-learn's AP)."""
    return _auc_ap(np.ascontiguousarray(np.asarray(w).T, dtype=np.float32), positive, score)[1]


def _nanmean_rows(parts: list[np.ndarray]) -> np.ndarray:
    stack = np.vstack(parts)
    ok = np.isfinite(stack)
    cnt = ok.sum(axis=0)
    total = np.where(ok, stack, 0.0).sum(axis=0)
    out = np.full(stack.shape[1], np.nan)
    np.divide(total, cnt, out=out, where=cnt > 0)
    return out


def weighted_metrics(
    cell: CellPredictions, w: np.ndarray, *, transposed: bool = False
) -> dict[str, np.ndarray]:
    """Every score in `SCORES` per replicate of the weights `w` (replicates x test rows, or
    test rows x replicates with `transposed=True`)."""
    # counts of draws are integers: exact in float32 (below 2**24), half the memory traffic
    wt = np.asarray(w) if transposed else np.asarray(w).T
    wt = np.ascontiguousarray(wt, dtype=np.float32)
    reps = wt.shape[1]
    binary = cell.mode == "binary"
    labels = [str(cell.positive)] if binary else cell.labels
    # one product for every count: totals, correct rows, and per label true / predicted / both
    k = len(labels)
    ind = np.zeros((2 + 3 * k, len(cell.y)), dtype=np.float32)
    ind[0] = 1.0
    ind[1] = cell.y == cell.pred
    for j, c in enumerate(labels):
        yt, yp = cell.y == c, cell.pred == c
        ind[2 + j], ind[2 + k + j], ind[2 + 2 * k + j] = yt, yp, yt & yp
    counts = (ind @ wt).astype(np.float64)
    total, correct = counts[0], counts[1]
    true_c, pred_c, tp = counts[2 : 2 + k], counts[2 + k : 2 + 2 * k], counts[2 + 2 * k :]
    precision = _safe_div(tp, pred_c)
    recall = _safe_div(tp, true_c)
    f1 = _safe_div(2 * tp, true_c + pred_c)
    out: dict[str, np.ndarray] = {"accuracy": _safe_div(correct, total)}
    nan = np.full(reps, np.nan)
    if binary:
        score = cell.proba[:, cell.classes.index(labels[0])]
        auc, ap = _auc_ap(wt, cell.y == labels[0], score)
        out.update(precision=precision[0], recall=recall[0], f1=f1[0], auc=auc)
        out["average_precision"] = ap
        return out
    out["precision"] = precision.mean(axis=0) if k else nan
    out["recall"] = recall.mean(axis=0) if k else nan
    out["f1"] = f1.mean(axis=0) if k else nan
    if k < 2:
        out["auc"] = out["average_precision"] = nan
        return out
    sub = cell.proba[:, [cell.classes.index(c) for c in labels]]
    sub = sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-12, None)
    aucs, aps = zip(
        *(_auc_ap(wt, cell.y == c, sub[:, j]) for j, c in enumerate(labels)), strict=True
    )
    out["auc"] = _nanmean_rows(list(aucs))
    out["average_precision"] = _nanmean_rows(list(aps))
    return out


def point_metrics(cell: CellPredictions) -> dict[str, float]:
    """The scores on the whole test set (every row weight 1)."""
    res = weighted_metrics(cell, np.ones((1, len(cell.y))))
    return {k: float(v[0]) for k, v in res.items()}
