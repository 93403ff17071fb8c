"""Attribute-inference and re-identification risk.

- SDMetrics (MIT-licensed metrics): DisclosureProtection (CAP attack vs a random-guess baseline;
  1 = fully protected) and CategoricalCAP (the attacker's correct-attribution probability turned
  into a protection score; 1 = the attacker never guesses right), over declared known columns
  (quasi-identifiers) and sensitive columns. Both are run on subsamples (they loop in Python).
- Distance-based record linkage in the statistical-disclosure-control style: the attacker links
  each real record to its nearest synthetic record on the quasi-identifiers; a link is a
  disclosure when it is unambiguous (nearest-neighbour distance ratio <= `nndr_max`) and the
  linked synthetic record carries the real record's sensitive value. The same rate on holdout
  records (never trained on) is the baseline; the excess is what the synthesizer leaks.
- anonymeter (singling-out, linkability, inference) only when it is importable: it is an optional
  extra (its 1.1.0 pins numpy<1.27 and pyarrow<22; its method is patent-pending).
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

import numpy as np
import polars as pl

from tamis.privacy.audit.distance import knn
from tamis.privacy.audit.encode import Encoder
from tamis.privacy.audit.order import subsample


def _pd(frame: pl.DataFrame, cols: list[str]) -> Any:
    return frame.select(cols).to_pandas()


def sdmetrics_disclosure(
    real: pl.DataFrame,
    synthetic: pl.DataFrame,
    known: list[str],
    sensitive: list[str],
    seed: int = 0,
    max_rows: int = 2000,
) -> dict[str, Any]:
    from sdmetrics.single_table import CategoricalCAP, DisclosureProtection

    r = subsample(real, max_rows, seed)
    s = subsample(synthetic, 4 * max_rows, seed)
    cols = known + sensitive
    continuous = [c for c in cols if r.schema[c].is_numeric() and r[c].n_unique() > 20]
    rp, sp = _pd(r, cols), _pd(s, cols)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dp = DisclosureProtection.compute_breakdown(
            rp,
            sp,
            known_column_names=known,
            sensitive_column_names=sensitive,
            continuous_column_names=continuous or None,
        )
        # CategoricalCAP needs discrete values: bin the continuous columns on real quantiles
        for c in continuous:
            edges = np.unique(np.nanquantile(rp[c].astype(float), np.linspace(0, 1, 11)))
            rp[c] = np.digitize(rp[c].astype(float), edges[1:-1])
            sp[c] = np.digitize(sp[c].astype(float), edges[1:-1])
        cap = CategoricalCAP.compute(
            rp.astype(str), sp.astype(str), key_fields=known, sensitive_fields=sensitive
        )
    return {
        "disclosure_protection": float(dp["score"]),
        "cap_protection": float(dp["cap_protection"]),
        "baseline_protection": float(dp["baseline_protection"]),
        "categorical_cap": float(cap),
        "n_real": int(r.height),
        "n_synthetic": int(s.height),
        "known_columns": known,
        "sensitive_columns": sensitive,
    }


def linkage_risk(
    train: pl.DataFrame,
    holdout: pl.DataFrame,
    synthetic: pl.DataFrame,
    quasi_identifiers: list[str],
    sensitive: list[str],
    nndr_max: float = 0.5,
    seed: int = 0,
    max_rows: int = 5000,
) -> dict[str, Any]:
    """Share of real records whose unambiguous nearest synthetic record reveals their secret.

    A link is unambiguous when d1/d2 <= `nndr_max`. Two synthetic records equally near (d1 == d2,
    including two exact copies at distance 0) make the link ambiguous, never a link to whichever
    came first: the figure does not depend on the order of the synthetic rows.
    """
    enc = Encoder.fit(train, quasi_identifiers)
    x_syn = enc.transform(synthetic)
    sens_syn = (
        synthetic.select(
            pl.concat_str([pl.col(c).cast(pl.Utf8) for c in sensitive], separator="\x1f")
        )
        .to_series()
        .to_numpy()
    )

    def rate(frame: pl.DataFrame) -> tuple[float, int]:
        f = subsample(frame, max_rows, seed)
        d, nn = knn(enc.transform(f), x_syn, k=2)
        if d.shape[1] < 2:  # a single synthetic record: nothing to compare the link with
            ratio = np.zeros(len(d))
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                # d1 == d2 (a tie, also at distance 0) is ambiguous: ratio 1
                ratio = np.where(d[:, 1] > d[:, 0], d[:, 0] / d[:, 1], 1.0)
        unambiguous = ratio <= nndr_max
        idx = np.flatnonzero(unambiguous)
        if len(idx) == 0:
            return 0.0, f.height
        nearest = nn[idx, 0]
        sens_real = (
            f[idx]
            .select(pl.concat_str([pl.col(c).cast(pl.Utf8) for c in sensitive], separator="\x1f"))
            .to_series()
            .to_numpy()
        )
        hits = np.sum(sens_syn[nearest] == sens_real)
        return float(hits / f.height), f.height

    r_train, n_train = rate(train)
    r_hold, n_hold = rate(holdout)
    return {
        "risk": r_train,
        "baseline_risk": r_hold,
        "excess_risk": r_train - r_hold,
        "n": n_train,
        "n_baseline": n_hold,
        "nndr_max": nndr_max,
    }


def anonymeter_available() -> bool:
    return importlib.util.find_spec("anonymeter") is not None


def anonymeter_risks(
    train: pl.DataFrame,
    holdout: pl.DataFrame,
    synthetic: pl.DataFrame,
    quasi_identifiers: list[str],
    sensitive: list[str],
    n_attacks: int = 500,
) -> dict[str, Any]:
    """anonymeter's three evaluators, when the optional package is installed; else a note."""
    if not anonymeter_available():
        return {"skipped": "anonymeter is not installed (optional; see docs/privacy.md)"}
    from anonymeter.evaluators import (
        InferenceEvaluator,
        LinkabilityEvaluator,
        SinglingOutEvaluator,
    )

    ori, syn, ctl = train.to_pandas(), synthetic.to_pandas(), holdout.to_pandas()
    out: dict[str, Any] = {}
    frames = {"ori": ori, "syn": syn, "control": ctl, "n_attacks": n_attacks}  # for every attack

    def risk(evaluator: Any, **attack: Any) -> float:
        return float(evaluator(**frames, **attack).evaluate().risk().value)

    out["singling_out_risk"] = risk(SinglingOutEvaluator)
    if len(quasi_identifiers) >= 2:
        half = len(quasi_identifiers) // 2
        aux = (quasi_identifiers[:half], quasi_identifiers[half:])
        out["linkability_risk"] = risk(LinkabilityEvaluator, aux_cols=aux)
    for col in sensitive:
        out[f"inference_risk.{col}"] = risk(
            InferenceEvaluator, aux_cols=quasi_identifiers, secret=col
        )
    return out
