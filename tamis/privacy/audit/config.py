"""What a privacy audit checks and how hard: `AuditConfig` (help on every field)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tamis.config import Config


class ShadowConfig(Config):
    """The shadow-model membership attack: retrains a synthesizer `count` times."""

    count: int = Field(default=0, ge=0, description="shadow synthesizers to train (0 = skip)")
    synthesizer: Literal["gaussian_copula", "ctgan", "tvae", "copy"] = Field(
        default="gaussian_copula",
        description="what the attacker retrains: gaussian_copula (default, fast) whatever made "
        "the data; name the kind that made it (ctgan, tvae) for a stronger, slower attack",
    )
    epochs: int = Field(default=10, ge=1, description="epochs for ctgan/tvae shadows")


class MarginalAttackConfig(Config):
    """The marginal (density) attack: synthetic vs reference low-order marginals."""

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


class PublicColumn(Config):
    """Public facts about a column (not learned from the private rows), for the validity checks."""

    bounds: tuple[float, float] | None = Field(default=None, description="public [low, high]")
    categories: list[Any] | None = Field(default=None, description="public category domain")


class AuditConfig(Config):
    """What to audit and how hard. Every field has a default except the declarations of columns."""

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
    shadow: ShadowConfig = Field(
        default_factory=ShadowConfig,
        description="the shadow-model membership attack: {count, synthesizer, epochs}",
    )
    marginal: MarginalAttackConfig = Field(
        default_factory=MarginalAttackConfig,
        description="the marginal (density) attack: {enabled, degree, bins, alpha, marginals}",
    )
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
