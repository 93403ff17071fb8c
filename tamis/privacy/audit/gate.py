"""The release gate: a policy YAML of thresholds over the audit's figures.

    # policy.yaml
    audit:                          # optional: how to audit (AuditConfig fields)
      quasi_identifiers: [age, sex, race, native-country]
      sensitive: [income]
      target: income
    thresholds:                     # required, at least one
      exact_match_rate: {max: 0.001}
      mia.distance.auc: {max: 0.6, bound: ci_high}   # judge the CI's upper end
      dcr.closer_to_train_share: {max: 0.55}
      quality.score: {min: 0.75}

The gate never decides from defaults alone: without a policy file with at least one threshold
there is no gate. A threshold on a figure the audit did not compute fails (it cannot be shown to
pass), naming the close names it could have meant.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tamis.errors import SpecError
from tamis.privacy.audit.core import AuditConfig


class Threshold(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: float | None = Field(default=None, description="the figure must be >= min")
    max: float | None = Field(default=None, description="the figure must be <= max")
    bound: Literal["point", "ci_low", "ci_high"] = Field(
        default="point", description="compare the point estimate or an end of its 95% CI"
    )

    @model_validator(mode="after")
    def _one_side(self) -> Threshold:
        if self.min is None and self.max is None:
            raise ValueError("a threshold needs min or max")
        return self


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    audit: AuditConfig = Field(default_factory=AuditConfig)
    thresholds: dict[str, Threshold]

    @model_validator(mode="after")
    def _not_empty(self) -> Policy:
        if not self.thresholds:
            raise ValueError("a policy needs at least one threshold")
        return self


def parse_policy(data: Any, file: str = "<policy>") -> Policy:
    if not isinstance(data, dict):
        raise SpecError(
            "a policy must be a YAML mapping with 'thresholds' (and optionally 'audit')",
            file=file,
            fix="see docs/privacy.md for an example policy",
        )
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ()))
        fix = None
        if err.get("type") == "extra_forbidden":
            if loc.startswith("audit."):
                fix = f"valid audit keys: {', '.join(AuditConfig.model_fields)}"
            elif loc.startswith("thresholds."):
                fix = "valid threshold keys: min, max, bound"
            else:
                fix = "valid top-level keys: audit, thresholds"
        elif err.get("type") == "missing":
            fix = "add a 'thresholds:' mapping of figure names to {min: ..} or {max: ..}"
        raise SpecError(err["msg"], file=file, field=loc or None, fix=fix) from None


def load_policy(path: str | Path) -> Policy:
    p = Path(path)
    if not p.exists():
        raise SpecError("policy file not found", file=str(p), fix="pass --policy POLICY.yaml")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"not valid YAML: {exc}", file=str(p)) from None
    return parse_policy(data, file=str(p))


def evaluate_gate(metrics: dict[str, float], policy: Policy) -> dict[str, Any]:
    """Every threshold checked: {"passed": bool, "checks": [...], "failed": [...]}."""
    checks: list[dict[str, Any]] = []
    for name, th in policy.thresholds.items():
        key = name if th.bound == "point" else f"{name}_{th.bound}"
        check: dict[str, Any] = {"check": name, "bound": th.bound, "min": th.min, "max": th.max}
        value = metrics.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            close = difflib.get_close_matches(key, list(metrics), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            check.update(
                passed=False,
                value=None,
                reason=f"figure '{key}' was not computed by this audit{hint}",
            )
        else:
            ok = (th.min is None or value >= th.min) and (th.max is None or value <= th.max)
            check.update(passed=bool(ok), value=float(value))
            if not ok:
                side = f">= {th.min}" if th.min is not None and value < th.min else f"<= {th.max}"
                check["reason"] = f"{key} = {value:.4g}, must be {side}"
        checks.append(check)
    failed = [c for c in checks if not c["passed"]]
    return {"passed": not failed, "checks": checks, "failed": failed}
