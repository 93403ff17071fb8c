"""Privacy audits of synthetic data: distances, membership inference, disclosure, k-anonymity, PII,
and the release gate that turns the figures into a pass/fail decision from a policy file."""

from tamis.privacy.audit.config import AuditConfig, ShadowConfig
from tamis.privacy.audit.core import AuditResult, run_audit
from tamis.privacy.audit.gate import Policy, evaluate_gate, load_policy
from tamis.privacy.audit.release import PrivacyAuditConfig, ReleaseAudit, release_audit

__all__ = [
    "AuditConfig",
    "AuditResult",
    "Policy",
    "PrivacyAuditConfig",
    "ReleaseAudit",
    "ShadowConfig",
    "evaluate_gate",
    "load_policy",
    "release_audit",
    "run_audit",
]
