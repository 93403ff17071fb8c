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

from typing import Any

import polars as pl

from tamis.pipelines.steps.base import Step, StepContext, StepOutput
from tamis.privacy.audit.release import PrivacyAuditConfig

#: per synthetic row: its position in the output version, DCR and NNDR to train and holdout
DCR_TABLE = "dcr"


class PrivacyAuditStep(Step[PrivacyAuditConfig]):
    """Privacy audit of synthetic data (MIA, DCR/NNDR, disclosure, k-anonymity, PII) + gate."""

    name = "privacy_audit"
    Params = PrivacyAuditConfig
    kind = "global"
    version = 1
    inputs = ("real", "synthetic", "holdout")
    requires = ("sdmetrics",)
    extra = "privacy"

    def output_schema(self, schema: pl.Schema, params: PrivacyAuditConfig) -> pl.Schema:
        """The synthetic input, unchanged (`schema` is the first input's: `real`); None when the
        synthetic schema is not the real one's (the engine then reads it from the data)."""
        return schema

    def run(
        self, inputs: dict[str, Any], params: PrivacyAuditConfig, ctx: StepContext
    ) -> StepOutput:
        from tamis.errors import GateFailed
        from tamis.privacy.audit.gate import load_policy
        from tamis.privacy.audit.release import check_policy, release_audit
        from tamis.privacy.audit.report import build_html, to_json, write_json

        policy = path = None
        if params.policy:
            path = ctx.base_dir / params.policy
            policy = load_policy(path)
        real = inputs["real"].collect()
        if policy is not None:
            # a threshold naming no figure is a typo: an error before any work
            check_policy(policy, params, real.columns, str(path))
        synthetic = inputs["synthetic"].collect()
        outcome = release_audit(
            real,
            synthetic,
            inputs["holdout"].collect(),
            params,
            policy=policy,
            policy_file=str(path),
            seed=ctx.seed,
            progress=ctx.progress,
        )
        result, gate = outcome.result, outcome.gate
        report = to_json(result.report)
        if gate is not None:
            report["gate"] = {**gate, "policy": params.policy}
        ctx.artifacts_dir.mkdir(parents=True, exist_ok=True)
        (ctx.artifacts_dir / "audit.html").write_text(build_html(result, gate))
        write_json(report, ctx.artifacts_dir / "audit.json")
        report["html"] = "artifacts/audit.html"
        if gate is not None and not gate["passed"] and params.on_failure == "fail":
            names = ", ".join(c["check"] for c in gate["failed"])
            raise GateFailed(
                f"privacy gate failed: {names}",
                failed=[{"name": c["check"], **c} for c in gate["failed"]],
                fix="see the audit report; raise the thresholds only if you accept the risk",
            )
        # per synthetic row, in the order of the output version's rows (`synthetic_row`)
        dcr = pl.DataFrame({k: v for k, v in result.arrays.items()}).sort("synthetic_row")
        return StepOutput(frames={"data": synthetic}, report=report, tables={DCR_TABLE: dcr})
