"""Membership-inference attacks against a synthetic dataset.

Setting: `members` are real rows the synthesizer trained on, `nonmembers` are real holdout rows it
never saw (same count), `reference` is a disjoint part of the holdout the attacker may use as
background knowledge. Each attack gives a score per row (higher = "member"); `attack_metrics`
turns the scores into AUC and TPR at 1% / 0.1% FPR with bootstrap CIs.

- distance: score = -DCR (distance from the row to its closest synthetic row).
- domias: a density-ratio attack in the style of DOMIAS (van Breugel et al., 2023):
  p_synthetic(x) / p_reference(x), both densities estimated with k-nearest-neighbour distances
  (log p(x) ~ -d log r_k(x)), so score = log r_k(x, reference) - log r_k(x, synthetic) up to a
  positive factor and a constant, neither of which changes the ROC.
- shadow: the attacker retrains the synthesizer on `count` shadow datasets drawn from the
  reference pool, labels which pool rows were in each shadow training set, learns a classifier
  from distance features (log d1, d2, d5 to the shadow synthetic data and the density ratio) and
  applies it to the features of members/nonmembers against the real synthetic data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from tamis.privacy.audit.distance import knn_distances
from tamis.privacy.audit.encode import Encoder
from tamis.privacy.audit.stats import attack_metrics

EPS = 1e-6
#: (training frame, rows to sample, seed) -> synthetic frame
Synthesize = Callable[[pl.DataFrame, int, int], pl.DataFrame]


def distance_scores(x: np.ndarray, synthetic: np.ndarray) -> np.ndarray:
    return -knn_distances(x, synthetic, k=1)[:, 0].astype(np.float64)


def domias_scores(
    x: np.ndarray, synthetic: np.ndarray, reference: np.ndarray, k: int = 1
) -> np.ndarray:
    r_syn = knn_distances(x, synthetic, k=k)[:, -1].astype(np.float64)
    r_ref = knn_distances(x, reference, k=k)[:, -1].astype(np.float64)
    return np.log(r_ref + EPS) - np.log(r_syn + EPS)


def _features(x: np.ndarray, synthetic: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    d = knn_distances(x, synthetic, k=max(k, 2)).astype(np.float64)
    r_ref = knn_distances(x, reference, k=k)[:, -1].astype(np.float64)
    logd = np.log(d + EPS)
    return np.column_stack(
        [logd[:, 0], logd[:, 1], logd[:, -1], np.log(r_ref + EPS) - logd[:, k - 1]]
    )


def shadow_attack(
    synthesize: Synthesize,
    pool: pl.DataFrame,
    encoder: Encoder,
    members: np.ndarray,
    nonmembers: np.ndarray,
    synthetic: np.ndarray,
    reference: np.ndarray,
    *,
    n_train: int,
    count: int = 3,
    k: int = 1,
    seed: int = 0,
    n_boot: int = 200,
    progress: Callable[..., None] | None = None,
) -> dict[str, Any]:
    """Train `count` shadow synthesizers on halves of `pool`; attack with a learned classifier.

    The shadow synthetic sets keep the target's ratio of synthetic to training rows, so distance
    features live on the same scale as in the real attack.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    if pool.height < 200:
        return {"skipped": f"the attacker's reference pool has {pool.height} rows (< 200)"}
    rng = np.random.default_rng(seed)
    size = pool.height // 2
    ratio = len(synthetic) / max(n_train, 1)
    feats, labels = [], []
    x_pool = encoder.transform(pool)
    for i in range(count):
        if progress is not None:
            progress(f"shadow synthesizer {i + 1}/{count}", completed=i, total=count)
        perm = rng.permutation(pool.height)
        inside, outside = perm[:size], perm[size:]
        shadow_train = pool[inside]
        n_syn = max(10, int(round(ratio * size)))
        shadow_syn = encoder.transform(
            synthesize(shadow_train, n_syn, seed + 1000 + i).select(encoder.columns)
        )
        # the shadow's reference is the out-of-shadow half, as the target's is the holdout half
        ref = x_pool[outside]
        # label at most half the out-of-shadow rows, so the rest stays their reference data
        n_lab = min(len(inside), len(outside) // 2, 2000)
        pick_in = rng.choice(inside, n_lab, replace=False)
        out_idx = rng.choice(len(outside), n_lab, replace=False)
        ref_for_out = np.delete(ref, out_idx, axis=0)
        feats.append(_features(x_pool[pick_in], shadow_syn, ref, k))
        feats.append(_features(ref[out_idx], shadow_syn, ref_for_out, k))
        labels.append(np.ones(n_lab))
        labels.append(np.zeros(n_lab))
    clf = HistGradientBoostingClassifier(max_iter=200, random_state=seed)
    clf.fit(np.vstack(feats), np.concatenate(labels))
    s_mem = clf.predict_proba(_features(members, synthetic, reference, k))[:, 1]
    s_non = clf.predict_proba(_features(nonmembers, synthetic, reference, k))[:, 1]
    out = attack_metrics(s_mem, s_non, n_boot=n_boot, seed=seed)
    out.update(shadow_count=count, shadow_train_rows=size)
    return out


def membership_attacks(
    members: np.ndarray,
    nonmembers: np.ndarray,
    synthetic: np.ndarray,
    reference: np.ndarray,
    *,
    k: int = 1,
    n_boot: int = 200,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """The distance and DOMIAS-style attacks (the shadow attack needs a synthesizer: see above)."""
    return {
        "distance": attack_metrics(
            distance_scores(members, synthetic),
            distance_scores(nonmembers, synthetic),
            n_boot=n_boot,
            seed=seed,
        ),
        "domias": attack_metrics(
            domias_scores(members, synthetic, reference, k),
            domias_scores(nonmembers, synthetic, reference, k),
            n_boot=n_boot,
            seed=seed,
        ),
    }
