"""Step `dp_aim`: AIM adaptive marginal-based DP synthesis (zCDP accounting, privacy ledger)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tamis.pipelines.steps.base import Step, StepContext, StepOutput
from tamis.pipelines.steps.dp_mst import DPMarginalParams, run_marginal


class DPAIMParams(DPMarginalParams):
    workload: list[list[str]] | None = Field(
        default=None, description="column sets to answer well (default: all `degree`-way sets)"
    )
    degree: int = Field(default=2, ge=1, description="size of the default workload's marginals")
    target: str | None = Field(
        default=None,
        description="a column to predict: adds every (degree+1)-way marginal holding it",
    )
    max_model_size: float = Field(
        default=80.0, gt=0, description="largest junction tree allowed, in megabytes"
    )
    round_iters: int = Field(default=100, ge=1, description="estimation iterations per round")
    max_rounds: int | None = Field(
        default=None, ge=1, description="stop after this many rounds (the last spends the rest)"
    )


class DPAIMStep(Step):
    """AIM (McKenna et al. 2022): 1-way marginals, then rounds that pick a workload marginal with
    the exponential mechanism (scored on the current model's error), measure it, refit the
    graphical model, and anneal the noise; rows from the final model. zCDP ledger."""

    name = "dp_aim"
    Params = DPAIMParams
    version = 1
    #: the DP noise and selections come from the OS CSPRNG, fresh per build, never stored
    deterministic = False
    requires = ("numpy",)
    extra = "dp"

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        p: DPAIMParams = params
        extra = {
            "workload": p.workload,
            "degree": p.degree,
            "target": p.target,
            "max_model_size": p.max_model_size,
            "round_iters": p.round_iters,
            "max_rounds": p.max_rounds,
        }
        return run_marginal("aim", inputs, p, ctx, extra)
