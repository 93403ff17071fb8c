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
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from tamis.errors import StepError
from tamis.privacy.audit.disclosure import anonymeter_risks, linkage_risk, sdmetrics_disclosure
from tamis.privacy.audit.distance import dcr_nndr, knn_distances
from tamis.privacy.audit.encode import Encoder, align
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
from tamis.privacy.audit.order import canonical, canonical_order, subsample, subsample_index
from tamis.privacy.audit.pii import scan_pii
from tamis.privacy.audit.stats import attack_metrics
from tamis.privacy.audit.validity import validity

MIN_ROWS = 50


class ShadowConfig(BaseModel):
    """The shadow-model membership attack: retrains a synthesizer `count` times."""

    model_config = ConfigDict(extra="forbid")
    count: int = Field(default=0, ge=0, description="shadow synthesizers to train (0 = skip)")
    synthesizer: Literal["gaussian_copula", "ctgan", "tvae", "copy"] = Field(
        default="gaussian_copula",
        description="what the attacker retrains: gaussian_copula (default, fast) whatever made "
        "the data; name the kind that made it (ctgan, tvae) for a stronger, slower attack",
    )
    epochs: int = Field(default=10, ge=1, description="epochs for ctgan/tvae shadows")


class MarginalAttackConfig(BaseModel):
    """The marginal (density) attack: synthetic vs reference low-order marginals."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(default=True, description="run the marginal attack")
    degree: Literal[1, 2] = Field(
        default=2, description="1 = 1-way marginals, 2 = every 2-way marginal"
    )
    bins: int = Field(default=10, ge=2, description="quantile bins for numeric columns")
    alpha: float = Field(default=0.5, gt=0, description="add-alpha smoothing of the counts")
    marginals: list[list[str]] | None = Field(
        default=None,
        description="the column sets to compare (e.g. the marginals a synthesizer reports it "
        "measured); default: every marginal of `degree`",
    )


class PublicColumn(BaseModel):
    """Public facts about a column (not learned from the private rows), for the validity checks."""

    model_config = ConfigDict(extra="forbid")
    bounds: tuple[float, float] | None = Field(default=None, description="public [low, high]")
    categories: list[Any] | None = Field(default=None, description="public category domain")


class AuditConfig(BaseModel):
    """What to audit and how hard. Every field has a default except the declarations of columns."""

    model_config = ConfigDict(extra="forbid")
    columns: list[str] | None = Field(
        default=None, description="columns to audit (default: all columns of the real data)"
    )
    quasi_identifiers: list[str] = Field(
        default_factory=list, description="columns an attacker may know (k-anonymity, linkage, CAP)"
    )
    sensitive: list[str] = Field(
        default_factory=list, description="columns an attacker wants to learn (l-diversity, CAP)"
    )
    target: str | None = Field(
        default=None, description="label column for TSTR/TRTR ML efficacy (skipped when unset)"
    )
    n_eval: int = Field(default=2000, ge=50, description="members and non-members per MIA")
    n_boot: int = Field(default=200, ge=0, description="bootstrap resamples for CIs")
    knn_k: int = Field(
        default=1, ge=1, description="k of the k-NN densities of the DOMIAS-style attack"
    )
    max_rows: int = Field(
        default=50000, ge=100, description="subsample larger frames for distance metrics"
    )
    k_threshold: int = Field(default=5, ge=2, description="k for the k-anonymity share figure")
    qi_bins: int = Field(default=10, ge=0, description="bins for numeric quasi-identifiers")
    shadow: ShadowConfig = Field(default_factory=ShadowConfig)
    marginal: MarginalAttackConfig = Field(default_factory=MarginalAttackConfig)
    quality: bool = Field(default=True, description="run SDMetrics' QualityReport")
    disclosure: bool = Field(default=True, description="run SDMetrics' CAP metrics (needs QIs)")
    anonymeter: bool = Field(default=True, description="run anonymeter when it is installed")
    pii_scan: bool = Field(default=True, description="scan the synthetic data for PII patterns")
    record_risk_top_k: int = Field(
        default=20,
        ge=0,
        description="training records listed as most exposed under the strongest attack (0 = skip)",
    )
    record_risk_values: bool = Field(
        default=False,
        description="copy the listed records' values into the report (off: the report, often "
        "shared with a release, would carry the most exposed training records verbatim)",
    )
    outlier_share: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="a training record is an outlier when its distance to its nearest other "
        "training record is in this top share",
    )
    public: dict[str, PublicColumn] = Field(
        default_factory=dict,
        description="public bounds/categories per column for the validity section (default: "
        "the real data's range and domain; `tamis audit` fills it from a DP version's metadata)",
    )


@dataclass
class AuditResult:
    report: dict[str, Any]
    #: per-row arrays for plots (DCR histograms) keyed by name; `synthetic_row` is the position
    #: of each row in the synthetic input as given
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    #: small real/synthetic samples for distribution plots
    samples: dict[str, pl.DataFrame] = field(default_factory=dict)


def _check(frame: pl.DataFrame, name: str) -> None:
    if frame.height < MIN_ROWS:
        raise StepError(
            f"the {name} data has {frame.height} rows; an audit needs at least {MIN_ROWS}",
            fix=f"give a {name} set of at least {MIN_ROWS} rows",
        )


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


def _flat(report: dict[str, Any]) -> dict[str, float]:
    """The figures the release gate can name, as `section.figure`."""
    m: dict[str, float] = {}
    m["exact_match_rate"] = report["exact_match"]["rate"]
    m["exact_match_rate_holdout"] = report["exact_match"]["holdout_rate"]
    for k, v in report["dcr"].items():
        if isinstance(v, (int, float)) and k not in ("n", "n_reference"):
            m[f"dcr.{k}"] = float(v)
    for attack, res in report["mia"].items():
        for k in ("auc", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001"):
            if k in res:
                for suffix in ("", "_ci_low", "_ci_high"):
                    if f"{k}{suffix}" in res:
                        m[f"mia.{attack}.{k}{suffix}"] = float(res[f"{k}{suffix}"])
    for section in (
        "disclosure",
        "linkage",
        "anonymeter",
        "k_anonymity",
        "k_anonymity_real",
        "record_risk",
        "marginals",
    ):
        for k, v in report.get(section, {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                m[f"{section}.{k}"] = float(v)
    v = report.get("validity", {})
    for k in ("max_out_of_range_share", "max_new_category_share", "max_null_rate_increase"):
        if k in v:
            m[f"validity.{k}"] = float(v[k])
    for col, e in v.get("columns", {}).items():
        for k in ("out_of_range_share", "new_category_share", "null_rate_change"):
            if k in e:
                m[f"validity.{col}.{k}"] = float(e[k])
    if "pii" in report:
        m["pii.columns_flagged"] = float(report["pii"]["n_flagged"])
    q = report.get("quality", {})
    for k in ("score", "column_shapes", "column_pair_trends"):
        if k in q:
            m[f"quality.{k}"] = float(q[k])
    ml = report.get("ml_efficacy", {})
    if ml:
        for k in ("accuracy", "minority_f1", "auc"):
            m[f"tstr.{k}"] = float(ml["tstr"][k])
            m[f"trtr.{k}"] = float(ml["trtr"][k])
            m[f"tstr.{k}_gap"] = float(ml[f"{k}_gap"])
    return m


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
    cols = cfg.columns or real.columns
    for name, frame in (("real", real), ("synthetic", synthetic), ("holdout", holdout)):
        _check(frame, name)
    unknown = [c for c in cols if c not in real.columns]
    if unknown:
        raise StepError(
            "column to audit is not in the real data",
            column=unknown[0],
            field="columns",
            fix=f"columns: {', '.join(real.columns)}",
        )
    real = real.select(cols)
    for name, dtype in real.schema.items():
        if isinstance(dtype, (pl.List, pl.Struct, pl.Array, pl.Object, pl.Binary)):
            raise StepError(
                f"unsupported column type {dtype} for a privacy audit",
                column=name,
                fix="flatten, cast to string, or leave the column out with `columns:`",
            )
    raw_synthetic = synthetic
    synthetic = align(real, synthetic, "synthetic")
    holdout = align(real, holdout, "holdout")
    # one canonical row order, so that no figure depends on the order of the inputs' rows
    syn_order = canonical_order(synthetic)
    real_order = canonical_order(real)
    real, synthetic, holdout = real[real_order], synthetic[syn_order], canonical(holdout)
    rng = np.random.default_rng(seed)
    report: dict[str, Any] = {
        "n_real": real.height,
        "n_synthetic": synthetic.height,
        "n_holdout": holdout.height,
        "columns": list(cols),
        "seed": seed,
        "config": cfg.model_dump(),
    }
    say("exact matches")
    report["exact_match"] = {
        "rate": exact_matches(real, synthetic),
        "holdout_rate": exact_matches(real, holdout),
        "n": synthetic.height,
    }

    sub = subsample

    enc = Encoder.fit(real)
    syn_keep = subsample_index(synthetic, cfg.max_rows, seed)
    syn_s = synthetic[syn_keep]
    x_real = enc.transform(sub(real, cfg.max_rows, seed + 1))
    x_syn = enc.transform(syn_s)
    # the holdout is split: one half are non-members, the other the attacker's reference data
    perm = rng.permutation(holdout.height)
    half = holdout.height // 2
    hold_eval, hold_ref = holdout[perm[:half]], holdout[perm[half:]]
    say("DCR / NNDR")
    dcr, arrays = dcr_nndr(x_syn, x_real, enc.transform(holdout), seed=seed, n_boot=cfg.n_boot)
    # which row of the synthetic input each per-row figure belongs to
    arrays["synthetic_row"] = syn_order[syn_keep]
    report["dcr"] = dcr
    n_eval = min(cfg.n_eval, real.height, hold_eval.height)
    members = real[rng.choice(real.height, n_eval, replace=False)]
    nonmembers = hold_eval[rng.choice(hold_eval.height, n_eval, replace=False)]
    x_ref = enc.transform(hold_ref)
    say("membership inference")
    # each attack is a scorer: frame of real rows -> membership score (higher = "member")
    scorers: dict[str, Callable[[pl.DataFrame], np.ndarray]] = {
        "distance": lambda f: distance_scores(enc.transform(f), x_syn),
        "domias": lambda f: domias_scores(enc.transform(f), x_syn, x_ref, cfg.knn_k),
    }
    skipped: dict[str, dict[str, Any]] = {}
    extra: dict[str, dict[str, Any]] = {}
    if cfg.marginal.enabled:
        for group in cfg.marginal.marginals or []:
            for c in group:
                if c not in cols:
                    raise StepError(
                        "a column of `marginal.marginals` is not among the audited columns",
                        column=c,
                        field="marginal.marginals",
                        fix=f"columns: {', '.join(cols)}",
                    )
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
                n_train=real.height,
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
            real_order[keep],
            x_real,
            scorers[worst["strongest"]],
            scores[worst["strongest"]][1],
            attack=worst["strongest"],
            top_k=cfg.record_risk_top_k,
            outlier_share=cfg.outlier_share,
            values=cfg.record_risk_values,
        )
    qis, sens = cfg.quasi_identifiers, cfg.sensitive
    for c in [*qis, *sens]:
        if c not in cols:
            raise StepError(
                "declared quasi-identifier/sensitive column is not in the data",
                column=c,
                field="quasi_identifiers" if c in qis else "sensitive",
                fix=f"columns: {', '.join(cols)}",
            )
    if qis:
        say("k-anonymity")
        report["k_anonymity"] = k_anonymity(synthetic, qis, sens, cfg.k_threshold, cfg.qi_bins)
        report["k_anonymity_real"] = k_anonymity(real, qis, sens, cfg.k_threshold, cfg.qi_bins)
    if qis and sens:
        say("disclosure risk")
        if cfg.disclosure:
            report["disclosure"] = sdmetrics_disclosure(real, synthetic, qis, sens, seed=seed)
        report["linkage"] = linkage_risk(real, holdout, syn_s, qis, sens, seed=seed)
        if cfg.anonymeter:
            report["anonymeter"] = anonymeter_risks(real, holdout, synthetic, qis, sens)
    say("validity")
    for c in cfg.public:
        if c not in cols:
            raise StepError(
                "a column with public metadata is not among the audited columns",
                column=c,
                field="public",
                fix=f"columns: {', '.join(cols)}",
            )
    public = {c: p.model_dump(exclude_none=True) for c, p in cfg.public.items()}
    report["validity"] = validity(real, raw_synthetic.select(cols), public)
    say("workload error")
    report["marginals"] = workload_error(real, raw_synthetic.select(cols), public=public)
    if cfg.pii_scan:
        report["pii"] = scan_pii(synthetic, seed=seed)
    if cfg.quality:
        say("quality report")
        from tamis.privacy.quality import quality_report

        report["quality"] = quality_report(sub(real, 10000, seed), sub(synthetic, 10000, seed))
    if cfg.target:
        say("ML efficacy (TSTR vs TRTR)")
        from tamis.privacy.quality import tstr

        report["ml_efficacy"] = tstr(
            synthetic, real, holdout, cfg.target, seed=seed, n_boot=cfg.n_boot
        )
    report["metrics"] = _flat(report)
    samples = {"real": sub(real, 5000, seed), "synthetic": sub(synthetic, 5000, seed)}
    return AuditResult(report=report, arrays=arrays, samples=samples)
