"""Small statistics shared by the audits: bootstrap CIs, ROC, AUC and TPR at a fixed FPR."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tamis.stats import bootstrap_ci as percentile_bootstrap
from tamis.stats import percentile_interval, tails


def bootstrap_ci(
    values: np.ndarray,
    stat: Callable[[np.ndarray], Any],
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """(point, low, high): a percentile bootstrap over rows of `values`."""
    values = np.asarray(values)
    point = float(stat(values))
    lo, hi = percentile_bootstrap(values, stat, n_boot=n_boot, seed=seed, q=tails(level))
    return point, lo, hi


def roc(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) of a score where higher means 'member' (ties handled as one threshold)."""
    order = np.argsort(-scores, kind="mergesort")
    s = scores[order]
    y = labels[order].astype(np.float64)
    distinct = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[distinct]
    fps = (1 + distinct) - tps
    p, n = max(y.sum(), 1.0), max(len(y) - y.sum(), 1.0)
    return np.r_[0.0, fps / n], np.r_[0.0, tps / p]


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted half (rank-based, O(n log n))."""
    from scipy.stats import rankdata

    labels = labels.astype(bool)
    n1, n0 = int(labels.sum()), int((~labels).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def tpr_at_fpr(scores: np.ndarray, labels: np.ndarray, fpr_target: float) -> float:
    """The highest TPR whose FPR does not exceed the target (a conservative reading of the ROC)."""
    fpr, tpr = roc(scores, labels)
    ok = fpr <= fpr_target + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def attack_metrics(
    member_scores: np.ndarray,
    nonmember_scores: np.ndarray,
    n_boot: int = 200,
    seed: int = 0,
    roc_points: int = 200,
) -> dict[str, Any]:
    """AUC, TPR at 1% and 0.1% FPR with stratified bootstrap 95% CIs, plus a thinned ROC curve."""
    s = np.r_[member_scores, nonmember_scores].astype(np.float64)
    y = np.r_[np.ones(len(member_scores)), np.zeros(len(nonmember_scores))].astype(bool)
    out: dict[str, Any] = {
        "n_members": int(len(member_scores)),
        "n_nonmembers": int(len(nonmember_scores)),
    }
    funcs: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
        "auc": auc,
        "tpr_at_fpr_0.01": lambda a, b: tpr_at_fpr(a, b, 0.01),
        "tpr_at_fpr_0.001": lambda a, b: tpr_at_fpr(a, b, 0.001),
    }
    for name, f in funcs.items():
        out[name] = f(s, y)
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        i1, i0 = np.flatnonzero(y), np.flatnonzero(~y)
        boots: dict[str, list[float]] = {k: [] for k in funcs}
        for _ in range(n_boot):
            idx = np.r_[rng.choice(i1, len(i1)), rng.choice(i0, len(i0))]
            for name, f in funcs.items():
                boots[name].append(f(s[idx], y[idx]))
        for name, vals in boots.items():
            lo, hi = percentile_interval(vals, finite_only=True)
            out[f"{name}_ci_low"], out[f"{name}_ci_high"] = lo, hi
    fpr, tpr = roc(s, y)
    if len(fpr) > roc_points:
        keep = np.unique(np.r_[np.linspace(0, len(fpr) - 1, roc_points).astype(int), len(fpr) - 1])
        fpr, tpr = fpr[keep], tpr[keep]
    out["roc"] = {
        "fpr": [round(float(v), 5) for v in fpr],
        "tpr": [round(float(v), 5) for v in tpr],
    }
    return out


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) two-sided CI of a binomial proportion k/n, from Beta quantiles."""
    from scipy.stats import beta

    if n <= 0:
        return float("nan"), float("nan")
    a = 1.0 - level
    lo = 0.0 if k <= 0 else float(beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k >= n else float(beta.ppf(1 - a / 2, k + 1, n - k))
    return lo, hi


def delong(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> tuple[float, float]:
    """(AUC, its standard error) by DeLong, DeLong & Clarke-Pearson (1988), ties counted half.

    The placement values (each member's share of non-members it outscores, each non-member's
    share of members that outscore it) come from mid-ranks, so this is O(n log n).
    """
    from scipy.stats import rankdata

    x = np.asarray(member_scores, dtype=np.float64)
    y = np.asarray(nonmember_scores, dtype=np.float64)
    n1, n0 = len(x), len(y)
    if n1 < 2 or n0 < 2:
        return float("nan"), float("nan")
    r_all = rankdata(np.r_[x, y])
    v10 = (r_all[:n1] - rankdata(x)) / n0  # per member: P(non-member score < it), ties half
    v01 = 1.0 - (r_all[n1:] - rankdata(y)) / n1  # per non-member: P(member score > it)
    auc_ = float(v10.mean())
    var = float(v10.var(ddof=1) / n1 + v01.var(ddof=1) / n0)
    return auc_, float(np.sqrt(max(var, 0.0)))


def delong_ci(
    member_scores: np.ndarray, nonmember_scores: np.ndarray, level: float = 0.95
) -> tuple[float, float, float]:
    """(AUC, low, high): the normal interval AUC +- z * DeLong SE, clipped to [0, 1]."""
    from scipy.stats import norm

    a, se = delong(member_scores, nonmember_scores)
    z = float(norm.ppf(1 - (1 - level) / 2))
    return a, max(0.0, a - z * se), min(1.0, a + z * se)


def tpr_at_fpr_counts(
    member_scores: np.ndarray, nonmember_scores: np.ndarray, fpr_target: float
) -> tuple[int, int, float]:
    """(true positives, false positives, threshold) of the highest-TPR threshold whose FPR does
    not exceed `fpr_target` (a member is called a member when its score >= threshold; the
    threshold is +inf when no threshold qualifies, i.e. nobody is called)."""
    s = np.r_[member_scores, nonmember_scores].astype(np.float64)
    y = np.r_[np.ones(len(member_scores)), np.zeros(len(nonmember_scores))]
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    distinct = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[distinct]
    fps = (1 + distinct) - tps
    n0 = max(len(nonmember_scores), 1)
    ok = fps / n0 <= fpr_target + 1e-12
    if not ok.any():
        return 0, 0, float("inf")
    j = int(np.flatnonzero(ok)[np.argmax(tps[ok])])
    return int(tps[j]), int(fps[j]), float(s[distinct[j]])
