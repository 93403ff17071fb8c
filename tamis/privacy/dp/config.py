"""Settings of DP-CTGAN and the refusal of settings that would weaken its guarantee."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tamis.errors import PrivacyError, StepError
from tamis.privacy.ledger import validate_budget

MIN_ROWS = 50


def _f(default: Any, help: str) -> Any:
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class DPCTGANConfig:
    """Settings of DP-CTGAN; each field's help text is in its metadata."""

    epsilon: float = _f(3.0, "target epsilon of the whole pipeline (preprocessing + DP-SGD)")
    delta: float | None = _f(None, "target delta; default min(1e-5, 0.1/n), must be < 1/n")
    epochs: int = _f(20, "passes over the data (in expectation) of the discriminator")
    batch_size: int = _f(2000, "expected real rows per DP-SGD step (Poisson sampling)")
    fake_batch_size: int | None = _f(None, "fixed fake rows per step (default: batch_size)")
    max_grad_norm: float = _f(1.0, "per-sample clipping norm C of the discriminator")
    noise_multiplier: float | None = _f(
        None, "DP-SGD noise; default: the smallest that fits the target"
    )
    accountant: Literal["prv", "rdp"] = _f("prv", "privacy accountant: prv (tight) or rdp")
    grad_sample_mode: Literal["ghost", "hooks"] = _f(
        "ghost", "Opacus per-sample clipping: ghost (fast) or hooks"
    )
    preprocess_fraction: float = _f(0.1, "share of epsilon for DP bounds, domains and modes")
    threshold_delta_fraction: float = _f(
        0.1, "share of delta for releasing learned category domains"
    )
    conditional: Literal["noisy", "uniform", "none"] = _f("noisy", "conditional vector frequencies")
    n_modes: int = _f(10, "modes per continuous column (quantiles of a noisy histogram)")
    metadata: dict[str, Any] = _f({}, "public metadata: {columns: {c: {type, bounds, categories}}}")
    embedding_dim: int = _f(128, "generator noise dimension")
    generator_dim: list[int] = _f([256, 256], "generator residual layer widths")
    discriminator_dim: list[int] = _f([256, 256], "discriminator layer widths")
    discriminator_dropout: float = _f(0.0, "dropout in the discriminator")
    discriminator_norm: Literal["none", "layer", "batch"] = _f(
        "none", "none or layer; batch is refused"
    )
    generator_lr: float = _f(1e-3, "Adam learning rate of the generator")
    discriminator_lr: float = _f(2e-3, "Adam learning rate of the discriminator")
    generator_steps: int = _f(1, "generator steps per discriminator step (free: no private data)")
    generator_ema: float = _f(
        0.99, "decay of the moving average of generator weights used to sample (0: off)"
    )
    pac: int = _f(1, "must be 1: pac > 1 groups rows, breaking record-level DP")
    gradient_penalty: float = _f(0.0, "must be 0: WGAN-GP's penalty is not clipped per sample")
    threads: int | None = _f(None, "torch threads (None: leave as is)")
    seed: int = _f(
        0,
        "seed of network initialisation and of sampling from the trained generator; never of"
        " DP noise or batch sampling (fresh from the OS CSPRNG on every fit)",
    )


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
        raise StepError(
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
        raise StepError("batch_size, fake_batch_size and epochs must be >= 1", field="batch_size")
    return validate_budget(cfg.epsilon, cfg.delta, n)
