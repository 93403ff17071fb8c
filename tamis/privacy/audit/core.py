"""The privacy audit: every check on (real training rows, synthetic rows, real holdout rows).

    from tamis.privacy.audit import AuditConfig, run_audit
    result = run_audit(real, synthetic, holdout, AuditConfig(quasi_identifiers=[...]))
    result.report["metrics"]   # flat {name: value} the release gate reads

Audits never mutate their inputs. Large inputs are subsampled (`max_rows`, seeded) for the
distance metrics; every figure records the n it was computed on.

Row order never changes a figure: each input is first put in a canonical order (sorted on all its
columns), subsamples are chosen by a seeded hash of each row's content (`subsample`), and ties
between equally near records are treated one way everywhere (DCR: half to each side; linkage: a
tie at the nearest distance is ambiguous, never a link).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from tamis.privacy.audit.config import AuditConfig
from tamis.privacy.audit.disclosure import anonymeter_risks, linkage_risk, sdmetrics_disclosure
from tamis.privacy.audit.distance import dcr_nndr
from tamis.privacy.audit.encode import Encoder
from tamis.privacy.audit.exposure import record_risk
from tamis.privacy.audit.figures import flat_metrics
from tamis.privacy.audit.inputs import Prepared, prepare
from tamis.privacy.audit.kanon import k_anonymity
from tamis.privacy.audit.marginal import marginal_scorer
from tamis.privacy.audit.marginals import workload_error
from tamis.privacy.audit.mia import (
    ATTACK_ORDER,
    Synthesize,
    distance_scores,
    domias_scores,
    shadow_model,
    worst_case,
)
from tamis.privacy.audit.order import subsample, subsample_index
from tamis.privacy.audit.pii import scan_pii
from tamis.privacy.audit.stats import attack_metrics
from tamis.privacy.audit.validity import validity


@dataclass
class AuditResult:
    report: dict[str, Any]
    #: per-row arrays for plots (DCR histograms) keyed by name; `synthetic_row` is the position
    #: of each row in the synthetic input as given
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    #: small real/synthetic samples for distribution plots
    samples: dict[str, pl.DataFrame] = field(default_factory=dict)


def exact_matches(train: pl.DataFrame, other: pl.DataFrame) -> float:
    """Share of `other` rows equal (all columns, nulls equal) to some `train` row.

    Numbers are compared as floats (an Int64 40 equals a Float64 40.0), everything else as text.
    """

    def canon(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select(
            [
                pl.col(c).cast(pl.Float64, strict=False).cast(pl.Utf8)
                if (t.is_numeric() or t == pl.Boolean) and other.schema[c].is_numeric()
                else pl.col(c).cast(pl.Utf8)
                for c, t in train.schema.items()
            ]
        )

    t = canon(train).unique()
    o = canon(other)
    hit = o.join(t, on=o.columns, how="semi", nulls_equal=True)
    return float(hit.height / max(o.height, 1))


Scorer = Callable[[pl.DataFrame], np.ndarray]


def _attacks(
    d: Prepared,
    cfg: AuditConfig,
    enc: Encoder,
    x_syn: np.ndarray,
    syn_s: pl.DataFrame,
    hold_ref: pl.DataFrame,
    *,
    seed: int,
    synthesize: Synthesize | None,
    progress: Callable[..., None] | None,
) -> tuple[dict[str, Scorer], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Each attack as a scorer (frame of real rows -> membership score, higher = "member"),
    the attacks skipped with their reason, and what each attack reports besides its metrics."""
    x_ref = enc.transform(hold_ref)
    scorers: dict[str, Scorer] = {
        "distance": lambda f: distance_scores(enc.transform(f), x_syn),
        "domias": lambda f: domias_scores(enc.transform(f), x_syn, x_ref, cfg.knn_k),
    }
    skipped: dict[str, dict[str, Any]] = {}
    extra: dict[str, dict[str, Any]] = {}
    if cfg.marginal.enabled:
        scorers["marginal"] = marginal_scorer(
            syn_s,
            hold_ref,
            degree=cfg.marginal.degree,
            bins=cfg.marginal.bins,
            alpha=cfg.marginal.alpha,
            marginals=cfg.marginal.marginals,
        )
        extra["marginal"] = cfg.marginal.model_dump(exclude={"enabled"})
    if cfg.shadow.count > 0:
        if synthesize is None:
            skipped["shadow"] = {"skipped": "no synthesizer given for shadow models"}
        else:
            model, info = shadow_model(
                synthesize,
                hold_ref,
                enc,
                x_syn,
                x_ref,
                n_train=d.real.height,
                count=cfg.shadow.count,
                k=cfg.knn_k,
                seed=seed,
                progress=progress,
            )
            if model is None:
                skipped["shadow"] = info
            else:
                scorers["shadow"] = lambda f, model=model: model(enc.transform(f))  # type: ignore[misc]
                extra["shadow"] = {**info, "synthesizer": cfg.shadow.synthesizer}
    return scorers, skipped, extra


def _membership(
    d: Prepared,
    cfg: AuditConfig,
    report: dict[str, Any],
    rng: np.random.Generator,
    *,
    seed: int,
    synthesize: Synthesize | None,
    progress: Callable[..., None] | None,
) -> dict[str, np.ndarray]:
    """DCR/NNDR, every membership attack, `mia.worst` and the most exposed records, into
    `report`; returns the per-synthetic-row arrays."""
    say = progress or (lambda *a, **k: None)
    real, holdout = d.real, d.holdout
    enc = Encoder.fit(real)
    syn_keep = subsample_index(d.synthetic, cfg.max_rows, seed)
    syn_s = d.synthetic[syn_keep]
    x_real = enc.transform(subsample(real, cfg.max_rows, seed + 1))
    x_syn = enc.transform(syn_s)
    # the holdout is split: one half are non-members, the other the attacker's reference data
    perm = rng.permutation(holdout.height)
    half = holdout.height // 2
    hold_eval, hold_ref = holdout[perm[:half]], holdout[perm[half:]]
    say("DCR / NNDR")
    dcr, arrays = dcr_nndr(x_syn, x_real, enc.transform(holdout), seed=seed, n_boot=cfg.n_boot)
    # which row of the synthetic input each per-row figure belongs to
    arrays["synthetic_row"] = d.syn_order[syn_keep]
    report["dcr"] = dcr
    n_eval = min(cfg.n_eval, real.height, hold_eval.height)
    members = real[rng.choice(real.height, n_eval, replace=False)]
    nonmembers = hold_eval[rng.choice(hold_eval.height, n_eval, replace=False)]
    say("membership inference")
    scorers, skipped, extra = _attacks(
        d, cfg, enc, x_syn, syn_s, hold_ref, seed=seed, synthesize=synthesize, progress=progress
    )
    names = [a for a in ATTACK_ORDER if a in scorers]
    scores = {a: (scorers[a](members), scorers[a](nonmembers)) for a in names}
    mia: dict[str, dict[str, Any]] = {}
    for a in names:
        mia[a] = attack_metrics(*scores[a], n_boot=cfg.n_boot, seed=seed) | extra.get(a, {})
    worst = worst_case(scores)
    mia["worst"] = worst
    report["mia"] = mia | skipped
    if cfg.record_risk_top_k > 0:
        say("per-record risk")
        keep = subsample_index(real, cfg.max_rows, seed + 1)  # the rows of x_real
        report["record_risk"] = record_risk(
            real[keep],
            d.real_order[keep],
            x_real,
            scorers[worst["strongest"]],
            scores[worst["strongest"]][1],
            attack=worst["strongest"],
            top_k=cfg.record_risk_top_k,
            outlier_share=cfg.outlier_share,
            values=cfg.record_risk_values,
        )
    return arrays


def _disclosure(
    d: Prepared, cfg: AuditConfig, report: dict[str, Any], seed: int, say: Callable[..., None]
) -> None:
    """k-anonymity (with quasi-identifiers) and attribute disclosure (with sensitive columns)."""
    qis, sens = cfg.quasi_identifiers, cfg.sensitive
    real, synthetic, holdout = d.real, d.synthetic, d.holdout
    if qis:
        say("k-anonymity")
        report["k_anonymity"] = k_anonymity(synthetic, qis, sens, cfg.k_threshold, cfg.qi_bins)
        report["k_anonymity_real"] = k_anonymity(real, qis, sens, cfg.k_threshold, cfg.qi_bins)
    if qis and sens:
        say("disclosure risk")
        if cfg.disclosure:
            report["disclosure"] = sdmetrics_disclosure(real, synthetic, qis, sens, seed=seed)
        syn_s = synthetic[subsample_index(synthetic, cfg.max_rows, seed)]
        report["linkage"] = linkage_risk(real, holdout, syn_s, qis, sens, seed=seed)
        if cfg.anonymeter:
            report["anonymeter"] = anonymeter_risks(real, holdout, synthetic, qis, sens)


def _utility(
    d: Prepared, cfg: AuditConfig, report: dict[str, Any], seed: int, say: Callable[..., None]
) -> None:
    """Validity of the synthetic values, workload error, PII scan, quality and ML efficacy."""
    real, synthetic = d.real, d.synthetic
    say("validity")
    public = {c: p.model_dump(exclude_none=True) for c, p in cfg.public.items()}
    raw = d.raw_synthetic.select(d.cols)
    report["validity"] = validity(real, raw, public)
    say("workload error")
    report["marginals"] = workload_error(real, raw, public=public)
    if cfg.pii_scan:
        report["pii"] = scan_pii(synthetic, seed=seed)
    if cfg.quality:
        say("quality report")
        from tamis.privacy.quality import quality_report

        report["quality"] = quality_report(
            subsample(real, 10000, seed), subsample(synthetic, 10000, seed)
        )
    if cfg.target:
        say("ML efficacy (TSTR vs TRTR)")
        from tamis.privacy.quality import tstr

        report["ml_efficacy"] = tstr(
            synthetic, real, d.holdout, cfg.target, seed=seed, n_boot=cfg.n_boot
        )


def run_audit(
    real: pl.DataFrame,
    synthetic: pl.DataFrame,
    holdout: pl.DataFrame,
    cfg: AuditConfig | None = None,
    *,
    seed: int = 0,
    synthesize: Synthesize | None = None,
    progress: Callable[..., None] | None = None,
) -> AuditResult:
    """Run every configured check; `synthesize` enables the shadow-model attack."""
    cfg = cfg or AuditConfig()
    say = progress or (lambda *a, **k: None)
    d = prepare(real, synthetic, holdout, cfg)
    rng = np.random.default_rng(seed)
    report: dict[str, Any] = {
        "n_real": d.real.height,
        "n_synthetic": d.synthetic.height,
        "n_holdout": d.holdout.height,
        "columns": list(d.cols),
        "seed": seed,
        "config": cfg.model_dump(),
    }
    say("exact matches")
    report["exact_match"] = {
        "rate": exact_matches(d.real, d.synthetic),
        "holdout_rate": exact_matches(d.real, d.holdout),
        "n": d.synthetic.height,
    }
    arrays = _membership(d, cfg, report, rng, seed=seed, synthesize=synthesize, progress=progress)
    _disclosure(d, cfg, report, seed, say)
    _utility(d, cfg, report, seed, say)
    report["metrics"] = flat_metrics(report)
    samples = {
        "real": subsample(d.real, 5000, seed),
        "synthetic": subsample(d.synthetic, 5000, seed),
    }
    return AuditResult(report=report, arrays=arrays, samples=samples)
