"""Settings of MST (`MarginalConfig`, the `dp_mst` step's params); AIM's are in `aim.AIMConfig`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tamis.config import Config
from tamis.privacy.budget import BudgetConfig


class MarginalColumnMeta(Config):
    """Public facts about one column (never learned from the private data)."""

    type: Literal["continuous", "categorical"] | None = Field(
        default=None, description="column kind (default: numbers continuous, the rest categorical)"
    )
    bounds: tuple[float, float] | None = Field(
        default=None,
        description="public [low, high] of a continuous column (else learned with DP from"
        " domain_fraction, or refused)",
    )
    categories: list[Any] | None = Field(
        default=None, description="public category domain (required for categorical columns)"
    )


class MarginalConfig(BudgetConfig):
    """Settings of MST (the `dp_mst` step's params); AIM adds its own (`AIMConfig`).

    `epsilon`, `delta` and `rows` come first, from `BudgetConfig`."""

    bins: int = Field(default=32, ge=2, description="equal-width public bins per numeric column")
    columns: dict[str, MarginalColumnMeta] = Field(
        default_factory=dict, description="public metadata per column: type, bounds, categories"
    )
    domain_fraction: float = Field(
        default=0.0,
        description="share of the budget spent learning missing numeric bounds (0: refuse them)",
    )
    estimator: Literal["auto", "numpy", "mbi", "tree"] = Field(
        default="auto",
        description="auto = numpy (graphical model, no JAX), mbi (Private-PGM, JAX), tree (MST only)",
    )
    iters: int = Field(default=1000, ge=1, description="mbi estimation iterations")
