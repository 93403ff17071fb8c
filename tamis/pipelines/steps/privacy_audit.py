"""Step `privacy_audit`: audit synthetic rows against the real training rows and a real holdout.

    audit:
      use: privacy_audit
      real: clean            # what the synthesizer trained on
      synthetic: synth
      holdout: test          # real rows it never saw
      params:
        quasi_identifiers: [age, sex, race, native-country]
        sensitive: [income]
        target: income
        policy: policy.yaml  # optional release gate (relative to the pipeline YAML)

The output version is the synthetic data, unchanged (audits never mutate data), so later steps can
depend on an audited version; the audit figures are the report, `audit.html` and `audit.json` are
artifacts beside it, and per-row DCR/NNDR is the `dcr` table (`synthetic_row`: the row's position
in the output version). With a `policy`, a failed check fails
the build (exit 3) unless `on_failure: warn`; a threshold naming no figure is an error (exit 1).
The shadow attack (`shadow: {count: N}`) retrains `shadow.synthesizer`, gaussian_copula by
default, whatever made the synthetic data. `mia.worst` is the worst case over every attack (with
CIs a policy can bound, e.g. `mia.worst.auc: {max: 0.6, bound: ci_high}`), `mia.marginal` the
attack on marginal synthesizers (`marginal: {degree, bins, alpha, marginals}`), and
`record_risk` the training rows most exposed under the strongest attack (`record_risk_top_k`).
"""

from __future__ import annotations

from typing import Any, Literal

import polars as pl
from pydantic import Field

from tamis.pipelines.steps.base import Step, StepContext, StepOutput, StepParams
from tamis.privacy.audit.core import AuditConfig


class PrivacyAuditParams(StepParams, AuditConfig):
    policy: str | None = Field(
        default=None,
        description="policy YAML of thresholds (release gate); its `audit:` section fills any "
        "audit field not set here",
    )
    on_failure: Literal["fail", "warn"] = Field(
        default="fail", description="fail the build (exit 3) or only record a failed gate"
    )


def make_synthesize(kind: str, epochs: int) -> Any:
    """A (frame, rows, seed) -> synthetic frame callable for the shadow-model attack."""

    def synthesize(frame: pl.DataFrame, rows: int, seed: int) -> pl.DataFrame:
        if kind == "copy":
            return frame.sample(rows, with_replacement=rows > frame.height, seed=seed)
        from tamis.privacy.synth import SynthConfig, fit_synthesizer, sample_synthetic

        model, info = fit_synthesizer(
            frame,
            SynthConfig(kind=kind, epochs=epochs, seed=seed),  # type: ignore[arg-type]
        )
        return sample_synthetic(model, rows, seed, info)

    return synthesize


class PrivacyAuditStep(Step):
    """Privacy audit of synthetic data (MIA, DCR/NNDR, disclosure, k-anonymity, PII) + gate."""

    name = "privacy_audit"
    Params = PrivacyAuditParams
    version = 1
    inputs = ("real", "synthetic", "holdout")
    requires = ("sdmetrics",)
    extra = "privacy"

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        from tamis.errors import GateFailed
        from tamis.privacy.audit.core import run_audit
        from tamis.privacy.audit.gate import check_threshold_names, evaluate_gate, load_policy
        from tamis.privacy.audit.report import build_html, to_json, write_json

        p: PrivacyAuditParams = params
        fields = {k: getattr(p, k) for k in AuditConfig.model_fields}
        policy = None
        if p.policy:
            path = ctx.base_dir / p.policy
            policy = load_policy(path)
            for k in AuditConfig.model_fields:
                if k not in p.model_fields_set and k in policy.audit.model_fields_set:
                    fields[k] = getattr(policy.audit, k)
        cfg = AuditConfig.model_validate(fields)
        real = inputs["real"].collect()
        if policy is not None:
            # a threshold naming no figure is a typo: an error before any work
            check_threshold_names(policy, list(cfg.columns or real.columns), str(path))
        synthetic = inputs["synthetic"].collect()
        holdout = inputs["holdout"].collect()
        result = run_audit(
            real,
            synthetic,
            holdout,
            cfg,
            seed=ctx.seed,
            synthesize=make_synthesize(cfg.shadow.synthesizer, cfg.shadow.epochs),
            progress=ctx.progress,
        )
        report = to_json(result.report)
        gate = None
        if policy is not None:
            gate = evaluate_gate(result.report["metrics"], policy)
            report["gate"] = {**gate, "policy": p.policy}
        ctx.artifacts_dir.mkdir(parents=True, exist_ok=True)
        (ctx.artifacts_dir / "audit.html").write_text(build_html(result, gate))
        write_json(report, ctx.artifacts_dir / "audit.json")
        report["html"] = "artifacts/audit.html"
        if gate is not None and not gate["passed"] and p.on_failure == "fail":
            names = ", ".join(c["check"] for c in gate["failed"])
            raise GateFailed(
                f"privacy gate failed: {names}",
                failed=[{"name": c["check"], **c} for c in gate["failed"]],
                fix="see the audit report; raise the thresholds only if you accept the risk",
            )
        # per synthetic row, in the order of the output version's rows (`synthetic_row`)
        dcr = pl.DataFrame({k: v for k, v in result.arrays.items()}).sort("synthetic_row")
        return StepOutput(frames={"data": synthetic}, report=report, tables={"dcr": dcr})
