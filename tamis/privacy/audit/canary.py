"""Empirical epsilon: a black-box canary audit of a synthesizer over many training runs.

The audit plays the distinguishing game of the DP definition (Jagielski, Ullman and Oprea,
"Auditing differentially private machine learning: how private is private SGD?", NeurIPS 2020):

1. `trials` times, fit the synthesizer on the data without the canary ("out") and, with a fresh
   seed, on the data plus the canary ("in"); each fit releases synthetic rows.
2. Score each release: how strongly it suggests the canary was in (`score`: `distance`, minus the
   distance from the canary to its nearest synthetic row; `exact`, the number of synthetic rows
   equal to the canary; `marginal`, the canary's 2-way marginal likelihood ratio, synthetic
   against the data without it; or a callable).
3. The first `calibration_share` of the trials of each world choose a threshold (the one whose
   bound is the largest on those trials); the other trials, never used for the choice, count the
   false positives (out releases at or above it) and false negatives (in releases below it).
4. Any (epsilon, delta)-DP mechanism satisfies, for every test,
   FPR + e^eps FNR >= 1 - delta and FNR + e^eps FPR >= 1 - delta. With one-sided Clopper-Pearson
   upper bounds FPR_hi and FNR_hi (each at 1 - (1 - confidence) / 2, so both hold at once with
   probability >= confidence):

       epsilon >= max(ln((1 - delta - FPR_hi) / FNR_hi), ln((1 - delta - FNR_hi) / FPR_hi), 0)

   is a lower bound on the true epsilon at that confidence. It must be below the claimed epsilon;
   if it is not (beyond the 1 - confidence chance of a false alarm), the DP claim is broken.

A bound near 0 does not show privacy: it shows only that this attack, with these many trials,
could not prove more. `max_provable_epsilon` is the bound a perfect attack would get from the same
number of evaluation trials (no error at all), which caps what the audit can show.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from tamis.errors import DataError

#: (training frame, seed) -> released synthetic frame
Fit = Callable[[pl.DataFrame, int], pl.DataFrame]
#: (canary, released synthetic frame) -> score, higher = "the canary was in"
Score = Callable[[pl.DataFrame, pl.DataFrame], float]


def cp_upper(k: int, n: int, level: float) -> float:
    """One-sided Clopper-Pearson upper bound of a binomial proportion k/n at `level`."""
    from scipy.stats import beta

    if n <= 0:
        return 1.0
    return 1.0 if k >= n else float(beta.ppf(level, k + 1, n - k))


def epsilon_bound(fp: int, fn: int, n_out: int, n_in: int, delta: float, level: float) -> float:
    """The lower bound on epsilon from fp of n_out and fn of n_in errors (one-sided CP at level)."""
    fpr, fnr = cp_upper(fp, n_out, level), cp_upper(fn, n_in, level)
    best = 0.0
    for a, b in ((fpr, fnr), (fnr, fpr)):
        if b > 0 and 1 - delta - a > b:
            best = max(best, math.log((1 - delta - a) / b))
    return best


def make_canary(data: pl.DataFrame) -> pl.DataFrame:
    """An unusual record built from the data's own domain: each number at its maximum, each other
    column at its least frequent value (ties: the smallest as text)."""
    values: dict[str, Any] = {}
    for col, dtype in data.schema.items():
        s = data[col].drop_nulls()
        if s.len() == 0:
            values[col] = None
        elif dtype.is_numeric():
            values[col] = s.max()
        else:
            vc = s.cast(pl.Utf8).value_counts(name="n").sort(["n", col])
            values[col] = vc[col][0]
    return pl.DataFrame([values], schema={c: data.schema[c] for c in data.columns})


def _scorer(score: str | Score, data: pl.DataFrame) -> Score:
    if callable(score):
        return score
    if score == "exact":

        def exact(canary: pl.DataFrame, synthetic: pl.DataFrame) -> float:
            syn = synthetic.select(canary.columns).cast(canary.schema, strict=False)
            return float(syn.join(canary, on=canary.columns, how="semi", nulls_equal=True).height)

        return exact
    if score == "distance":
        from tamis.privacy.audit.distance import knn_distances
        from tamis.privacy.audit.encode import Encoder, align

        enc = Encoder.fit(data)

        def distance(canary: pl.DataFrame, synthetic: pl.DataFrame) -> float:
            x = enc.transform(align(data, synthetic, "synthetic"))
            return -float(knn_distances(enc.transform(canary), x, k=1)[0, 0])

        return distance
    if score == "marginal":
        from tamis.privacy.audit.encode import align
        from tamis.privacy.audit.marginal import marginal_scorer

        def marginal(canary: pl.DataFrame, synthetic: pl.DataFrame) -> float:
            syn = align(data, synthetic, "synthetic")
            return float(marginal_scorer(syn, data)(canary)[0])

        return marginal
    raise DataError(
        f"unknown canary score {score!r}",
        field="score",
        fix="use distance, exact, marginal or a callable (canary, synthetic) -> float",
    )


def _best_threshold(s_in: np.ndarray, s_out: np.ndarray, delta: float, level: float) -> float:
    """The threshold with the largest bound on these trials (called "in" when score >= it)."""
    best_t, best_b = float("inf"), -1.0
    for t in np.unique(np.r_[s_in, s_out]):
        fp = int((s_out >= t).sum())
        fn = int((s_in < t).sum())
        b = epsilon_bound(fp, fn, len(s_out), len(s_in), delta, level)
        if b > best_b:
            best_t, best_b = float(t), b
    return best_t


def canary_audit(
    fit: Fit,
    data: pl.DataFrame,
    canary: pl.DataFrame | None = None,
    *,
    trials: int = 200,
    score: str | Score = "distance",
    delta: float = 1e-5,
    confidence: float = 0.95,
    calibration_share: float = 0.5,
    claimed_epsilon: float | None = None,
    seed: int = 0,
    progress: Callable[..., None] | None = None,
) -> dict[str, Any]:
    """Fit `fit` 2 x `trials` times (with and without `canary`); a lower bound on epsilon."""
    if trials < 4:
        raise DataError(
            f"a canary audit needs at least 4 trials per world, got {trials}",
            field="trials",
            fix="use trials >= 100 for a bound worth reading",
        )
    if not 0 < confidence < 1 or not 0 <= delta < 1 or not 0 < calibration_share < 1:
        raise DataError(
            "confidence and calibration_share must be in (0, 1), delta in [0, 1)",
            field="confidence",
            fix="e.g. confidence: 0.95, delta: 1e-5, calibration_share: 0.5",
        )
    canary = make_canary(data) if canary is None else canary
    missing = [c for c in data.columns if c not in canary.columns]
    if canary.height != 1 or missing:
        raise DataError(
            "the canary must be one row with the data's columns"
            + (f" (missing: {', '.join(missing)})" if missing else ""),
            field="canary",
            fix="pass a one-row frame with every column of the data, or none to build one",
        )
    canary = canary.select(data.columns).cast(data.schema, strict=False)
    scorer = _scorer(score, data)
    with_canary = pl.concat([data, canary], how="vertical_relaxed")
    s_in, s_out = np.empty(trials), np.empty(trials)
    for t in range(trials):
        if progress is not None:
            progress("canary trials", completed=t, total=trials)
        s_out[t] = scorer(canary, fit(data, seed + 2 * t))
        s_in[t] = scorer(canary, fit(with_canary, seed + 2 * t + 1))
    n_cal = max(1, min(trials - 1, int(round(trials * calibration_share))))
    level = 1 - (1 - confidence) / 2
    threshold = _best_threshold(s_in[:n_cal], s_out[:n_cal], delta, level)
    ev_in, ev_out = s_in[n_cal:], s_out[n_cal:]
    fp = int((ev_out >= threshold).sum())
    fn = int((ev_in < threshold).sum())
    n_ev = len(ev_in)
    bound = epsilon_bound(fp, fn, n_ev, n_ev, delta, level)
    out: dict[str, Any] = {
        "trials_per_world": trials,
        "fits": 2 * trials,
        "calibration_trials": n_cal,
        "evaluation_trials": n_ev,
        "score": score if isinstance(score, str) else getattr(score, "__name__", "custom"),
        "threshold": threshold,
        "false_positives": fp,
        "false_negatives": fn,
        "fpr": fp / n_ev,
        "fnr": fn / n_ev,
        "fpr_upper": cp_upper(fp, n_ev, level),
        "fnr_upper": cp_upper(fn, n_ev, level),
        "delta": delta,
        "confidence": confidence,
        "epsilon_lower_bound": bound,
        "max_provable_epsilon": epsilon_bound(0, 0, n_ev, n_ev, delta, level),
        "canary": canary.row(0, named=True),
        "method": "Jagielski et al. 2020: one-sided Clopper-Pearson on FPR and FNR of a "
        "threshold chosen on separate calibration trials",
    }
    if claimed_epsilon is not None:
        out["claimed_epsilon"] = claimed_epsilon
        out["below_claim"] = bool(bound < claimed_epsilon)
    return out
