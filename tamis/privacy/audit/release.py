"""`release_audit`: the privacy audit plus the release gate, one way for the step and the CLI.

    outcome = release_audit(real, synthetic, holdout, config, policy=load_policy(path), seed=0)
    outcome.result.report      # every figure
    outcome.gate               # {passed, checks, failed} when a policy was given

The config that runs is the policy's `audit:` section with the fields set explicitly in `config`
on top (`merge_config`): a field a pipeline step sets wins, any other comes from the policy. With
the synthetic version's manifest (`synthetic_manifest`), a DP version's public bounds/domains
feed the validity section and a marginal synthesizer's measured marginals are what the marginal
attack compares, unless the config says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl
from pydantic import Field

from tamis.config import load_config
from tamis.privacy.audit.config import AuditConfig
from tamis.privacy.audit.core import AuditResult, run_audit
from tamis.privacy.audit.gate import Policy, check_threshold_names, evaluate_gate


class PrivacyAuditConfig(AuditConfig):
    """The `privacy_audit` step's params: the audit config plus the release policy."""

    policy: str | None = Field(
        default=None,
        description="policy YAML of thresholds (release gate); its `audit:` section fills any "
        "audit field not set here",
    )
    on_failure: Literal["fail", "warn"] = Field(
        default="fail", description="fail the build (exit 3) or only record a failed gate"
    )


@dataclass
class ReleaseAudit:
    """The audit that ran, its config, and the gate's decision (None without a policy)."""

    result: AuditResult
    config: AuditConfig
    gate: dict[str, Any] | None


def merge_config(config: AuditConfig | None, policy: Policy | None) -> AuditConfig:
    """The policy's `audit:` section, with the fields set explicitly in `config` on top."""
    base = policy.audit if policy is not None else AuditConfig()
    if config is None:
        return base
    fields = {k: getattr(base, k) for k in AuditConfig.model_fields}
    fields.update({k: getattr(config, k) for k in config.model_fields_set if k in fields})
    return AuditConfig.model_validate(fields)


def from_synthetic_manifest(
    cfg: AuditConfig, manifest: dict[str, Any] | None, columns: list[str]
) -> AuditConfig:
    """Public metadata and measured marginals read from the synthetic version's manifest."""
    from tamis.privacy.audit.marginal import released_marginals
    from tamis.privacy.audit.validity import public_metadata

    if manifest is None:
        return cfg
    if not cfg.public:
        # a DP version's public bounds/domains are what its values must respect
        public = {c: m for c, m in public_metadata(manifest).items() if c in columns}
        if public:
            cfg = cfg.model_copy(
                update={
                    "public": load_config(
                        AuditConfig,
                        {"public": public},
                        prefix="synthetic version's metadata",
                        what="the audit config",
                    ).public
                }
            )
    if cfg.marginal.enabled and cfg.marginal.marginals is None:
        # a dp_mst/dp_aim version: attack the marginals it says it measured
        measured = released_marginals(manifest, columns)
        if measured:
            cfg = cfg.model_copy(
                update={"marginal": cfg.marginal.model_copy(update={"marginals": measured})}
            )
    return cfg


def make_synthesize(kind: str, epochs: int) -> Callable[[pl.DataFrame, int, int], pl.DataFrame]:
    """A (frame, rows, seed) -> synthetic frame callable for the shadow-model attack."""

    def synthesize(frame: pl.DataFrame, rows: int, seed: int) -> pl.DataFrame:
        if kind == "copy":
            return frame.sample(rows, with_replacement=rows > frame.height, seed=seed)
        from tamis.privacy.synth import NeuralSynthConfig, fit_synthesizer, sample_synthetic

        model, info = fit_synthesizer(
            frame,
            kind,  # type: ignore[arg-type]
            NeuralSynthConfig(epochs=epochs),
            seed=seed,
        )
        return sample_synthetic(model, rows, seed, info)

    return synthesize


def check_policy(
    policy: Policy, config: AuditConfig | None, real_columns: list[str], file: str
) -> None:
    """A threshold naming no figure is a typo: a `SpecError` before any work."""
    cfg = merge_config(config, policy)
    check_threshold_names(policy, list(cfg.columns or real_columns), file)


def release_audit(
    real: pl.DataFrame,
    synthetic: pl.DataFrame,
    holdout: pl.DataFrame,
    config: AuditConfig | None = None,
    *,
    policy: Policy | None = None,
    policy_file: str = "<policy>",
    synthetic_manifest: dict[str, Any] | None = None,
    seed: int = 0,
    progress: Callable[..., None] | None = None,
) -> ReleaseAudit:
    """Audit the synthetic rows and, with a policy, decide the release (`gate`).

    A threshold naming no figure is a `SpecError` before the audit runs.
    """
    cfg = merge_config(config, policy)
    columns = list(cfg.columns or real.columns)
    if policy is not None:
        check_threshold_names(policy, columns, policy_file)
    cfg = from_synthetic_manifest(cfg, synthetic_manifest, columns)
    result = run_audit(
        real,
        synthetic,
        holdout,
        cfg,
        seed=seed,
        synthesize=make_synthesize(cfg.shadow.synthesizer, cfg.shadow.epochs),
        progress=progress,
    )
    gate = evaluate_gate(result.report["metrics"], policy) if policy is not None else None
    return ReleaseAudit(result=result, config=cfg, gate=gate)
