"""Per-example predictions of a sweep cell on the fixed test set, and metrics on resampled rows.

A classifier or TSTR cell stores what it predicted for every test row (`predictions.parquet`
beside its `result.json`): a content key of the test row (`row_key`), the true label (`y`), the
predicted label (`pred`) and one probability column per class (`p:<class>`), sorted by
`row_key`. Sorting by content makes every resampling independent of the test set's row order.

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

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PREDICTIONS = "predictions.parquet"
#: figures computed from stored predictions (a recipe maps its metric names onto these)
SCORES = ("accuracy", "precision", "recall", "f1", "auc", "average_precision")
#: elements of a weight matrix processed at once (replicates x rows; float32: 16 MB)
CHUNK_ELEMENTS = 4_000_000


def row_keys(frame: Any) -> np.ndarray:
    """A content key per row (hash of the row's values, columns in name order).

    Two identical rows share a key; their predictions are identical too, so the order among
    them never matters.
    """
    import polars as pl

    df = frame if isinstance(frame, pl.DataFrame) else pl.from_pandas(frame)
    df = df.select(sorted(df.columns))
    lines = df.write_ndjson().splitlines()
    return np.asarray(
        [hashlib.blake2b(line.encode(), digest_size=8).hexdigest() for line in lines], dtype=object
    )


@dataclass
class CellPredictions:
    """What one cell predicted for each test row, rows sorted by `keys`."""

    keys: np.ndarray
    y: np.ndarray
    pred: np.ndarray
    proba: np.ndarray
    classes: list[str]
    #: "binary" (positive = `positive`) or "macro" (averaged over `labels`)
    mode: str
    positive: str | None = None
    labels: list[str] = field(default_factory=list)
    #: recipe metric name -> the score it is (e.g. tstr's minority_f1 -> f1)
    names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        keys: np.ndarray,
        y: Any,
        pred: Any,
        proba: np.ndarray,
        classes: list[str],
        *,
        positive: str | None,
        names: dict[str, str],
        binary: bool,
    ) -> CellPredictions:
        y_arr = np.asarray([str(v) for v in y], dtype=object)
        pred_arr = np.asarray([str(v) for v in pred], dtype=object)
        order = np.argsort(np.asarray(keys, dtype=str), kind="stable")
        present = sorted(set(y_arr.tolist()))
        return cls(
            keys=np.asarray(keys, dtype=object)[order],
            y=y_arr[order],
            pred=pred_arr[order],
            proba=np.asarray(proba, dtype=np.float64)[order],
            classes=[str(c) for c in classes],
            mode="binary" if binary else "macro",
            positive=positive if binary else None,
            labels=present,
            names=dict(names),
        )

    def meta(self) -> dict[str, Any]:
        return {
            "file": PREDICTIONS,
            "rows": len(self.y),
            "classes": self.classes,
            "mode": self.mode,
            "positive": self.positive,
            "labels": self.labels,
            "names": self.names,
        }

    def save(self, directory: Path) -> dict[str, Any]:
        import polars as pl

        cols: dict[str, Any] = {
            "row_key": self.keys.astype(str),
            "y": self.y.astype(str),
            "pred": self.pred.astype(str),
        }
        # binary figures read only the positive class's score: the other columns are not kept
        kept = self.stored_classes()
        for c in kept:
            cols[f"p:{c}"] = self.proba[:, self.classes.index(c)]
        directory.mkdir(parents=True, exist_ok=True)
        pl.DataFrame(cols).write_parquet(directory / PREDICTIONS, compression="zstd")
        return {**self.meta(), "classes": kept}

    def stored_classes(self) -> list[str]:
        if self.mode == "binary" and self.positive in self.classes:
            return [str(self.positive)]
        return list(self.classes)

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any]) -> CellPredictions:
        import polars as pl

        df = pl.read_parquet(directory / meta.get("file", PREDICTIONS))
        classes = [str(c) for c in meta["classes"]]
        return cls(
            keys=df["row_key"].to_numpy().astype(object),
            y=df["y"].to_numpy().astype(object),
            pred=df["pred"].to_numpy().astype(object),
            proba=np.column_stack([df[f"p:{c}"].to_numpy() for c in classes]).astype(np.float64),
            classes=classes,
            mode=meta["mode"],
            positive=meta.get("positive"),
            labels=[str(x) for x in meta.get("labels") or []],
            names=dict(meta.get("names") or {}),
        )

    def fingerprint(self) -> str:
        """A hash of everything the scores depend on (cells predicting alike score alike)."""
        h = hashlib.blake2b(digest_size=16)
        for part in (self.y, self.pred, self.keys):
            h.update("\x1f".join(map(str, part)).encode())
        h.update(np.ascontiguousarray(self.proba).tobytes())
        h.update(repr((self.classes, self.mode, self.positive, self.labels)).encode())
        return h.hexdigest()

    def metric(self, name: str) -> str | None:
        """The score a recipe metric is, or None when predictions cannot give it."""
        score = self.names.get(name, name)
        return score if score in SCORES else None


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
