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
there is no gate. A threshold on a name that no audit computes (a typo) is an error before the
audit runs (`check_threshold_names`), naming the file, the key and the valid names. A threshold on
a valid figure this audit did not compute (e.g. `linkage.*` without quasi-identifiers) fails (it
cannot be shown to pass).
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from tamis.config import Config, load_config
from tamis.errors import SpecError
from tamis.privacy.audit.config import AuditConfig
from tamis.safe_yaml import safe_load_yaml


class Threshold(Config):
    """A bound on one audit figure."""

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


class Policy(Config):
    """A release policy: how to audit (optional) and the thresholds the gate checks."""

    audit: AuditConfig = Field(
        default_factory=AuditConfig, description="how to audit (fields of the audit config)"
    )
    thresholds: dict[str, Threshold] = Field(
        description="figure name -> {min: ..} or {max: ..} (and bound: point, ci_low, ci_high)"
    )

    @model_validator(mode="after")
    def _not_empty(self) -> Policy:
        if not self.thresholds:
            raise ValueError("a policy needs at least one threshold")
        return self


def parse_policy(data: Any, file: str = "<policy>") -> Policy:
    """A policy from a YAML mapping; an invalid key is a `SpecError` naming it and the valid ones."""
    if not isinstance(data, dict):
        raise SpecError(
            "a policy must be a YAML mapping with 'thresholds' (and optionally 'audit')",
            file=file,
            fix="see docs/privacy.md for an example policy",
        )
    raw = dict(data)
    if isinstance(raw.get("audit"), dict):
        raw["audit"] = load_config(AuditConfig, raw["audit"], file=file, prefix="audit")
    if isinstance(raw.get("thresholds"), dict):
        raw["thresholds"] = {
            name: load_config(Threshold, t, file=file, prefix=f"thresholds.{name}")
            for name, t in raw["thresholds"].items()
        }
    return load_config(Policy, raw, file=file, prefix="policy", what="a policy")


def load_policy(path: str | Path) -> Policy:
    p = Path(path)
    if not p.exists():
        raise SpecError("policy file not found", file=str(p), fix="pass --policy POLICY.yaml")
    data = safe_load_yaml(p.read_text(), file=str(p))
    return parse_policy(data, file=str(p))


_CI = ("", "_ci_low", "_ci_high")
_DCR = (
    "dcr_train_median",
    "dcr_holdout_median",
    "dcr_train_p05",
    "dcr_holdout_p05",
    "dcr_zero_share",
    "dcr_zero_share_holdout",
    "nndr_train_median",
    "nndr_holdout_median",
)
_SECTIONS: dict[str, tuple[str, ...]] = {
    "disclosure": (
        "disclosure_protection",
        "cap_protection",
        "baseline_protection",
        "categorical_cap",
        "n_real",
        "n_synthetic",
    ),
    "linkage": ("risk", "baseline_risk", "excess_risk", "n", "n_baseline", "nndr_max"),
    "anonymeter": ("singling_out_risk", "linkability_risk"),
    "k_anonymity": (
        "k",
        "l",
        "k_threshold",
        "classes",
        "rows_in_small_classes",
        "share_in_small_classes",
        "unique_rows_share",
        "bins",
    ),
    "quality": ("score", "column_shapes", "column_pair_trends"),
    "record_risk": (
        "n_scored",
        "top_k",
        "n_at_least_kth_score",
        "outlier_share",
        "outlier_distance",
        "outlier_share_all",
        "outlier_share_top_k",
        "outlier_lift",
    ),
    "validity": ("max_out_of_range_share", "max_new_category_share", "max_null_rate_increase"),
    "marginals": (
        "bins",
        "n_marginals_1way",
        "n_marginals_2way",
        "l1_mean_1way",
        "l1_mean_2way",
        "l1_max_2way",
    ),
}
_VALIDITY_COLUMN = ("out_of_range_share", "new_category_share", "null_rate_change")


def metric_names(columns: list[str]) -> list[str]:
    """Every figure name an audit of `columns` can compute (the gate's valid threshold keys)."""
    names = ["exact_match_rate", "exact_match_rate_holdout", "pii.columns_flagged"]
    names += [f"dcr.{k}" for k in _DCR]
    names += [f"dcr.closer_to_train_share{s}" for s in _CI]
    for attack in ("distance", "domias", "marginal", "shadow", "worst"):
        for k in ("auc", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001"):
            names += [f"mia.{attack}.{k}{s}" for s in _CI]
    for section, keys in _SECTIONS.items():
        names += [f"{section}.{k}" for k in keys]
    names += [f"k_anonymity_real.{k}" for k in _SECTIONS["k_anonymity"]]
    for k in ("accuracy", "minority_f1", "auc"):
        names += [f"tstr.{k}", f"trtr.{k}", f"tstr.{k}_gap"]
    for col in columns:
        names += [f"validity.{col}.{k}" for k in _VALIDITY_COLUMN]
        names.append(f"anonymeter.inference_risk.{col}")
    return names


def check_threshold_names(policy: Policy, columns: list[str], file: str) -> None:
    """A SpecError for the first threshold that names no figure an audit can compute."""
    valid = metric_names(columns)
    known = set(valid)
    for name, th in policy.thresholds.items():
        key = name if th.bound == "point" else f"{name}_{th.bound}"
        if key in known:
            continue
        if name in known:
            with_ci = sorted({n[: -len("_ci_low")] for n in valid if n.endswith("_ci_low")})
            raise SpecError(
                f"threshold '{name}' has no confidence interval, so `bound: {th.bound}` "
                "cannot apply",
                file=file,
                field=f"thresholds.{name}.bound",
                fix=f"use `bound: point`; figures with a CI: {', '.join(with_ci)}",
            )
        close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
        general = [
            n
            for n in valid
            if not n.startswith(("validity.", "anonymeter.inference"))
            and not n.endswith(("_ci_low", "_ci_high"))
        ]
        general += [
            "(dcr.closer_to_train_share and mia.* also as <name>_ci_low, <name>_ci_high)",
            "validity.max_*",
            "validity.<column>.{out_of_range_share,new_category_share,null_rate_change}",
            "anonymeter.inference_risk.<column>",
        ]
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise SpecError(
            f"unknown figure '{name}' in the policy's thresholds",
            file=file,
            field=f"thresholds.{name}",
            fix=f"{hint}valid keys: {', '.join(general)} (columns: {', '.join(columns)})",
        )


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
