"""Privacy audits of synthetic data: distances, membership inference, disclosure, k-anonymity, PII,
and the release gate that turns the figures into a pass/fail decision from a policy file."""

from tamis.privacy.audit.core import AuditConfig, AuditResult, ShadowConfig, run_audit
from tamis.privacy.audit.gate import Policy, evaluate_gate, load_policy

__all__ = [
    "AuditConfig",
    "AuditResult",
    "Policy",
    "ShadowConfig",
    "evaluate_gate",
    "load_policy",
    "run_audit",
]
