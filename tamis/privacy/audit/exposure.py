"""Per-record exposure: the training records most exposed under the strongest attack."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from tamis.privacy.audit.distance import knn_distances


def record_risk(
    rows: pl.DataFrame,
    row_ids: np.ndarray,
    x_rows: np.ndarray,
    scorer: Callable[[pl.DataFrame], np.ndarray],
    nonmember_scores: np.ndarray,
    *,
    attack: str,
    top_k: int = 20,
    outlier_share: float = 0.05,
    values: bool = False,
) -> dict[str, Any]:
    """The training records most exposed under one attack, and how many of them are outliers.

    Every row of `rows` (training records, encoded as `x_rows`; `row_ids` their positions in the
    real input) is scored by the attack. With `values`, each listed entry carries the record. A record is an outlier when its distance to its nearest
    other training record is in the top `outlier_share` of those distances. For each listed
    record, `nonmember_share_at_or_above` is the share of the evaluated non-members that score at
    least as high: the false-positive rate of an attacker who calls this record a member.
    Ties in score are listed in the canonical row order (never the input's);
    `outlier_share_top_k` counts every record scoring at least the k-th score
    (`n_at_least_kth_score` of them), so ties never decide it.
    """
    scores = np.asarray(scorer(rows), dtype=np.float64)
    d_own = knn_distances(x_rows, x_rows, k=2)[:, -1].astype(np.float64)
    cut = float(np.quantile(d_own, 1.0 - outlier_share))
    outlier = d_own >= cut if cut > 0 else d_own > 0
    k = min(top_k, len(scores))
    top = np.argsort(-scores, kind="stable")[:k]
    non = np.sort(np.asarray(nonmember_scores, dtype=np.float64))
    listed = []
    for i in top:
        at_or_above = len(non) - np.searchsorted(non, scores[i], side="left")
        entry: dict[str, Any] = {
            "real_row": int(row_ids[i]),
            "score": float(scores[i]),
            "nonmember_share_at_or_above": float(at_or_above / max(len(non), 1)),
            "nn_distance": float(d_own[i]),
            "outlier": bool(outlier[i]),
        }
        if values:
            entry["record"] = rows.row(int(i), named=True)
        listed.append(entry)
    share_all = float(outlier.mean())
    # the top k with every record tied with the k-th: no share depends on how ties are listed
    in_top = scores >= scores[top[-1]] if k else np.zeros(len(scores), dtype=bool)
    share_top = float(outlier[in_top].mean()) if k else float("nan")
    return {
        "attack": attack,
        "n_scored": int(len(scores)),
        "top_k": int(k),
        "n_at_least_kth_score": int(in_top.sum()),
        "outlier_share": outlier_share,
        "outlier_distance": cut,
        "outlier_share_all": share_all,
        "outlier_share_top_k": share_top,
        "outlier_lift": share_top / share_all if share_all > 0 else float("nan"),
        "top": listed,
    }
