"""Blocked nearest-neighbour distances, DCR/NNDR, ROC statistics and the encoding."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from tamis.privacy.audit.distance import dcr_nndr, knn_distances
from tamis.privacy.audit.encode import Encoder
from tamis.privacy.audit.stats import attack_metrics, auc, tpr_at_fpr


def test_knn_matches_sklearn_brute() -> None:
    rng = np.random.default_rng(0)
    q, r = rng.normal(size=(700, 9)), rng.normal(size=(900, 9))
    ref, _ = NearestNeighbors(n_neighbors=3, algorithm="brute").fit(r).kneighbors(q)
    for k in (1, 2, 3):
        # small blocks force several matrix products
        got = knn_distances(q, r, k=k, block_bytes=4 * 900 * 64)
        np.testing.assert_allclose(got, ref[:, :k], rtol=1e-3, atol=1e-3)


def test_dcr_share_is_half_for_same_distribution_and_high_for_copies() -> None:
    rng = np.random.default_rng(1)
    train, hold, syn = (rng.normal(size=(1500, 5)).astype(np.float32) for _ in range(3))
    fig, arrays = dcr_nndr(syn, train, hold, n_boot=100)
    assert fig["closer_to_train_share_ci_low"] <= 0.5 <= fig["closer_to_train_share_ci_high"]
    assert len(arrays["dcr_train"]) == 1500 and (arrays["nndr_train"] <= 1).all()
    fig2, _ = dcr_nndr(train, train, hold, n_boot=0)
    assert fig2["closer_to_train_share"] == 1.0 and fig2["dcr_zero_share"] == 1.0


def test_auc_and_tpr() -> None:
    rng = np.random.default_rng(2)
    s, y = rng.normal(size=2000), rng.random(2000) < 0.5
    s[y] += 0.7
    assert abs(auc(s, y) - roc_auc_score(y, s)) < 1e-9
    perfect = np.r_[np.ones(100), np.zeros(1000)]
    assert tpr_at_fpr(perfect, perfect.astype(bool), 0.001) == 1.0
    m = attack_metrics(s[y], s[~y], n_boot=50)
    assert m["auc_ci_low"] < m["auc"] < m["auc_ci_high"]
    assert 0 <= m["tpr_at_fpr_0.001"] <= m["tpr_at_fpr_0.01"] <= 1


def test_encoder_handles_nulls_unseen_and_types(make_mixed: Any) -> None:
    a = make_mixed(300)
    enc = Encoder.fit(a)
    other = a.with_columns(pl.lit("zzz").alias("cat"), pl.lit(None, dtype=pl.Int64).alias("age"))
    x = enc.transform(other)
    assert x.shape == (300, enc.width) and x.dtype == np.float32 and np.isfinite(x).all()
    # two different categories are at distance 1, like a one-(robust)-std numeric step
    one = enc.transform(pl.DataFrame({**a.head(1).to_dict(), "cat": ["a"]}))
    two = enc.transform(pl.DataFrame({**a.head(1).to_dict(), "cat": ["b"]}))
    assert abs(float(np.linalg.norm(one - two)) - 1.0) < 1e-6
