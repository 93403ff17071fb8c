"""Settings of DP-CTGAN and the refusal of settings that would weaken its guarantee."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tamis.config import Config
from tamis.errors import DataError, PrivacyError
from tamis.privacy.budget import EPSILON_HELP, BudgetConfig
from tamis.privacy.ledger import validate_budget

MIN_ROWS = 50


class ColumnMeta(Config):
    """Public facts about one column (never learned from the private data)."""

    type: Literal["continuous", "categorical"] | None = Field(
        default=None, description="column kind (default: numbers continuous, the rest categorical)"
    )
    bounds: tuple[float, float] | None = Field(
        default=None, description="public [low, high] of a continuous column (else learned with DP)"
    )
    categories: list[Any] | None = Field(
        default=None, description="public category domain (else learned with DP, rare ones dropped)"
    )
    nullable: bool | None = Field(default=None, description="whether a continuous column has nulls")


class DPCTGANConfig(BudgetConfig):
    """Settings of DP-CTGAN: the capability's config and the `dp_ctgan` step's params."""

    epsilon: float = Field(default=3.0, description=EPSILON_HELP)
    epochs: int = Field(default=20, ge=1, description="discriminator passes over the data")
    batch_size: int = Field(default=2000, ge=1, description="expected real rows per DP-SGD step")
    fake_batch_size: int | None = Field(
        default=None, ge=1, description="fixed fake rows per step (default: batch_size)"
    )
    max_grad_norm: float = Field(default=1.0, gt=0, description="per-sample clipping norm")
    noise_multiplier: float | None = Field(
        default=None, description="DP-SGD noise (default: the smallest fitting the target)"
    )
    accountant: Literal["prv", "rdp"] = Field(default="prv", description="privacy accountant")
    grad_sample_mode: Literal["ghost", "hooks"] = Field(
        default="ghost", description="Opacus per-sample clipping implementation"
    )
    preprocess_fraction: float = Field(
        default=0.1, description="share of epsilon for DP bounds, domains, modes, frequencies"
    )
    threshold_delta_fraction: float = Field(
        default=0.1, description="share of delta for releasing learned category domains"
    )
    conditional: Literal["noisy", "uniform", "none"] = Field(
        default="noisy", description="conditional-vector frequencies: noisy (charged) or uniform"
    )
    n_modes: int = Field(default=10, ge=1, le=64, description="modes per continuous column")
    columns: dict[str, ColumnMeta] = Field(
        default_factory=dict, description="public metadata per column: type, bounds, categories"
    )
    embedding_dim: int = Field(default=128, ge=1, description="generator noise dimension")
    generator_lr: float = Field(default=1e-3, gt=0, description="generator learning rate")
    discriminator_lr: float = Field(default=2e-3, gt=0, description="discriminator learning rate")
    generator_dim: list[int] = Field(
        default=[256, 256], description="generator residual layer widths"
    )
    discriminator_dim: list[int] = Field(
        default=[256, 256], description="discriminator layer widths"
    )
    discriminator_dropout: float = Field(default=0.0, description="dropout in the discriminator")
    discriminator_norm: Literal["none", "layer", "batch"] = Field(
        default="none", description="none or layer (batch is refused: it mixes rows)"
    )
    generator_steps: int = Field(
        default=1,
        ge=1,
        description="generator steps per discriminator step (free: no private data)",
    )
    generator_ema: float = Field(
        default=0.99,
        description="decay of the moving average of generator weights used to sample (0: off)",
    )
    pac: int = Field(default=1, description="must be 1 (pac > 1 breaks record-level DP)")
    gradient_penalty: float = Field(default=0.0, description="must be 0 (not clipped per sample)")
    threads: int | None = Field(default=None, ge=1, description="torch threads")

    def metadata(self) -> dict[str, Any]:
        """The public metadata as the preprocessing reads it: `{columns: {c: {type, bounds...}}}`."""
        return {"columns": {c: m.model_dump(exclude_none=True) for c, m in self.columns.items()}}


def check_config(cfg: DPCTGANConfig, n: int) -> float:
    """Refuse configurations that would silently weaken the guarantee; return delta."""
    if cfg.pac != 1:
        raise PrivacyError(
            f"pac={cfg.pac} groups {cfg.pac} rows into one discriminator input, so"
            " clipping bounds a group, not a row",
            field="pac",
            fix="set pac: 1",
        )
    if cfg.gradient_penalty:
        raise PrivacyError(
            "a gradient penalty mixes real and fake rows after clipping and is not"
            " covered by DP-SGD",
            field="gradient_penalty",
            fix="set gradient_penalty: 0",
        )
    if cfg.discriminator_norm == "batch":
        raise PrivacyError(
            "BatchNorm in the discriminator mixes rows within a batch: per-sample"
            " gradients stop being per-sample",
            field="discriminator_norm",
            fix="use discriminator_norm: layer or none",
        )
    if n < MIN_ROWS:
        raise DataError(
            f"dp_ctgan needs at least {MIN_ROWS} rows, got {n}",
            field="input",
            fix="use more rows; DP noise swamps anything learned from so few",
        )
    if not cfg.max_grad_norm > 0:
        raise PrivacyError("max_grad_norm must be > 0", field="max_grad_norm")
    if cfg.noise_multiplier is not None and cfg.noise_multiplier <= 0:
        raise PrivacyError(
            "noise_multiplier must be > 0 (0 means no privacy)", field="noise_multiplier"
        )
    if not 0 <= cfg.preprocess_fraction < 1 or not 0 < cfg.threshold_delta_fraction < 1:
        raise PrivacyError(
            "preprocess_fraction must be in [0, 1) and threshold_delta_fraction in (0, 1)",
            field="preprocess_fraction",
        )
    if cfg.batch_size < 1 or cfg.epochs < 1 or (cfg.fake_batch_size or 1) < 1:
        raise DataError("batch_size, fake_batch_size and epochs must be >= 1", field="batch_size")
    return validate_budget(cfg.epsilon, cfg.delta, n)
