"""Nearest-neighbour distances with blocked float32 matrix products (no Python double loop).

`knn(query, ref, k)` computes `|q|^2 + |r|^2 - 2 q.r` one block of query rows at a time
(each block a BLAS matrix product against all reference rows), then keeps the `k` smallest per row
with `np.partition`. Memory is `block x len(ref)` floats; time is what BLAS gives.

DCR (distance to closest record) and NNDR (nearest-neighbour distance ratio, d1/d2) are computed
for synthetic rows against the real training rows and, as the baseline, against a holdout of real
rows the synthesizer never saw, subsampled to the same size so the two are comparable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tamis.privacy.audit.stats import bootstrap_ci


def knn(
    query: np.ndarray,
    ref: np.ndarray,
    k: int = 1,
    block_bytes: int = 128 * 1024 * 1024,
    progress: Callable[..., None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(distances, indices) of the `k` nearest ref rows of each query row, nearest first.

    Candidates are selected with the float32 matrix-product form; the selected distances are
    then recomputed directly (`|q - r|`, float32 differences), so an exact copy is at distance 0
    rather than at the round-off of `|q|^2 + |r|^2 - 2 q.r`.
    """
    q = np.ascontiguousarray(query, dtype=np.float32)
    r = np.ascontiguousarray(ref, dtype=np.float32)
    n, m = q.shape[0], r.shape[0]
    k = min(k, m)
    dist = np.empty((n, k), dtype=np.float32)
    index = np.empty((n, k), dtype=np.int64)
    if n == 0 or m == 0:
        return dist, index
    # |q|^2 is constant per query row, so only |r|^2 - 2 q.r is needed to rank candidates;
    # -2 r^T is formed once, so each block is one BLAS product plus one broadcast add
    r_sq = np.einsum("ij,ij->i", r, r)
    rt = np.ascontiguousarray(-2.0 * r.T)
    block = max(1, min(n, block_bytes // (4 * m)))
    buf = np.empty((block, m), dtype=np.float32)
    for start in range(0, n, block):
        qb = q[start : start + block]
        b = len(qb)
        d2 = buf[:b]
        np.matmul(qb, rt, out=d2)
        d2 += r_sq[None, :]
        rows = np.arange(b)
        if k == 1:
            idx = d2.argmin(axis=1)[:, None]
        elif k == 2:
            first = d2.argmin(axis=1)
            d2[rows, first] = np.inf
            idx = np.column_stack([first, d2.argmin(axis=1)])
        else:
            idx = np.argpartition(d2, k - 1, axis=1)[:, :k]
        exact = np.sqrt(((qb[:, None, :] - r[idx]) ** 2).sum(axis=2))
        order = np.argsort(exact, axis=1, kind="stable")
        dist[start : start + b] = np.take_along_axis(exact, order, axis=1)
        index[start : start + b] = np.take_along_axis(idx, order, axis=1)
        if progress is not None:
            progress("nearest neighbours", completed=min(n, start + b), total=n)
    return dist, index


def knn_distances(query: np.ndarray, ref: np.ndarray, k: int = 1, **options: Any) -> np.ndarray:
    """Euclidean distances from each query row to its `k` nearest ref rows, sorted ascending
    (`options`: `knn`'s block_bytes and progress)."""
    return knn(query, ref, k, **options)[0]


def dcr_nndr(
    synthetic: np.ndarray,
    train: np.ndarray,
    holdout: np.ndarray,
    seed: int = 0,
    n_boot: int = 200,
    progress: Callable[..., None] | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """DCR/NNDR of synthetic rows to train and to an equally large holdout baseline.

    Returns (figures, arrays) where arrays hold per-synthetic-row `dcr_train`, `dcr_holdout`,
    `nndr_train`, `nndr_holdout` for histograms. `closer_to_train_share` is the share of synthetic
    rows strictly closer to train than to holdout (ties split half-half); about 0.5 means the
    synthesizer is no closer to its training rows than to unseen ones.
    """
    rng = np.random.default_rng(seed)
    m = min(len(train), len(holdout))
    tr = train if len(train) == m else train[rng.choice(len(train), m, replace=False)]
    ho = holdout if len(holdout) == m else holdout[rng.choice(len(holdout), m, replace=False)]
    d_tr = knn_distances(synthetic, tr, k=2, progress=progress)
    d_ho = knn_distances(synthetic, ho, k=2, progress=progress)

    def nndr(d: np.ndarray) -> np.ndarray:
        if d.shape[1] < 2:
            return np.ones(len(d), dtype=np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(d[:, 1] > 0, d[:, 0] / d[:, 1], 1.0)
        return r.astype(np.float32)

    dcr_tr, dcr_ho = d_tr[:, 0], d_ho[:, 0]
    nn_tr, nn_ho = nndr(d_tr), nndr(d_ho)
    closer = (dcr_tr < dcr_ho).astype(np.float64) + 0.5 * (dcr_tr == dcr_ho)
    share, lo, hi = bootstrap_ci(closer, np.mean, n_boot=n_boot, seed=seed)
    figures: dict[str, Any] = {
        "n": int(len(synthetic)),
        "n_reference": int(m),
        "dcr_train_median": float(np.median(dcr_tr)),
        "dcr_holdout_median": float(np.median(dcr_ho)),
        "dcr_train_p05": float(np.quantile(dcr_tr, 0.05)),
        "dcr_holdout_p05": float(np.quantile(dcr_ho, 0.05)),
        "dcr_zero_share": float(np.mean(dcr_tr <= 1e-6)),
        "dcr_zero_share_holdout": float(np.mean(dcr_ho <= 1e-6)),
        "nndr_train_median": float(np.median(nn_tr)),
        "nndr_holdout_median": float(np.median(nn_ho)),
        "closer_to_train_share": share,
        "closer_to_train_share_ci_low": lo,
        "closer_to_train_share_ci_high": hi,
    }
    arrays = {
        "dcr_train": dcr_tr,
        "dcr_holdout": dcr_ho,
        "nndr_train": nn_tr,
        "nndr_holdout": nn_ho,
    }
    return figures, arrays
