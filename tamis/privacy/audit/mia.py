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
from tamis.privacy.audit.stats import (
    clopper_pearson,
    delong_ci,
    tpr_at_fpr_counts,
)

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


Scorer = Callable[[np.ndarray], np.ndarray]


def shadow_model(
    synthesize: Synthesize,
    pool: pl.DataFrame,
    encoder: Encoder,
    synthetic: np.ndarray,
    reference: np.ndarray,
    *,
    n_train: int,
    count: int = 3,
    k: int = 1,
    seed: int = 0,
    progress: Callable[..., None] | None = None,
) -> tuple[Scorer | None, dict[str, Any]]:
    """Train `count` shadow synthesizers on halves of `pool`; return the learned scorer.

    (scorer, info): the scorer maps encoded rows to member probabilities against the real
    synthetic data; it is None (and info says why under `skipped`) when the pool is too small.
    The shadow synthetic sets keep the target's ratio of synthetic to training rows, so distance
    features live on the same scale as in the real attack.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    if pool.height < 200:
        return None, {"skipped": f"the attacker's reference pool has {pool.height} rows (< 200)"}
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

    def scorer(x: np.ndarray) -> np.ndarray:
        return np.asarray(clf.predict_proba(_features(x, synthetic, reference, k))[:, 1])

    return scorer, {"shadow_count": count, "shadow_train_rows": size}


ATTACK_ORDER = ("distance", "domias", "marginal", "shadow")
_TPR = {"tpr_at_fpr_0.01": 0.01, "tpr_at_fpr_0.001": 0.001}


def worst_case(
    scores: dict[str, tuple[np.ndarray, np.ndarray]], level: float = 0.95
) -> dict[str, Any]:
    """The worst case over every attack run: AUC and TPR at 1% / 0.1% FPR, with a CI each.

    Per attack: the AUC with a DeLong interval, and each TPR (true positives among the members
    at the threshold whose false-positive rate does not exceed the target) with a
    Clopper-Pearson interval. Each interval is at level 1 - (1 - level) / m for m attacks
    (Bonferroni), so with probability >= `level` every attack's interval holds its true value
    at once, and then the worst true value lies in [max of the lows, max of the highs]: those
    are `<figure>_ci_low` and `<figure>_ci_high`. The point figure is the largest point
    estimate and `<figure>_attack` names its attack. `strongest` is the attack with the highest
    TPR at 1% FPR (ties: higher AUC, then report order).
    """
    names = [a for a in ATTACK_ORDER if a in scores] + sorted(
        a for a in scores if a not in ATTACK_ORDER
    )
    m = len(names)
    if m == 0:
        return {"skipped": "no membership attack ran"}
    per_level = 1.0 - (1.0 - level) / m
    per: dict[str, dict[str, Any]] = {}
    for name in names:
        s_mem, s_non = scores[name]
        a, lo, hi = delong_ci(s_mem, s_non, per_level)
        row: dict[str, Any] = {"auc": a, "auc_ci_low": lo, "auc_ci_high": hi}
        for key, target in _TPR.items():
            tp, fp, _ = tpr_at_fpr_counts(s_mem, s_non, target)
            lo, hi = clopper_pearson(tp, len(s_mem), per_level)
            row.update(
                {
                    key: tp / max(len(s_mem), 1),
                    f"{key}_ci_low": lo,
                    f"{key}_ci_high": hi,
                    f"{key}_tp": tp,
                    f"{key}_fp": fp,
                }
            )
        row.update(n_members=int(len(s_mem)), n_nonmembers=int(len(s_non)))
        per[name] = row
    out: dict[str, Any] = {}
    for key in ("auc", *_TPR):
        best = max(names, key=lambda n: (per[n][key], -names.index(n)))
        out[key] = per[best][key]
        out[f"{key}_attack"] = best
        out[f"{key}_ci_low"] = max(per[n][f"{key}_ci_low"] for n in names)
        out[f"{key}_ci_high"] = max(per[n][f"{key}_ci_high"] for n in names)
    out["strongest"] = max(
        names, key=lambda n: (per[n]["tpr_at_fpr_0.01"], per[n]["auc"], -names.index(n))
    )
    out.update(
        attacks=names,
        level=level,
        per_attack_level=per_level,
        ci_method="AUC: DeLong; TPR: Clopper-Pearson; Bonferroni over the attacks",
        per_attack=per,
    )
    return out
