"""Step `dp_aim`: AIM adaptive marginal-based DP synthesis (zCDP accounting, privacy ledger)."""

from __future__ import annotations

from typing import Any

import polars as pl

from tamis.pipelines.steps.base import Step, StepContext, StepOutput
from tamis.pipelines.steps.dp_mst import run_marginal
from tamis.privacy.dp_marginal.aim import AIMConfig


class DPAIMStep(Step[AIMConfig]):
    """AIM (McKenna et al. 2022): 1-way marginals, then rounds that pick a workload marginal with
    the exponential mechanism (scored on the current model's error), measure it, refit the
    graphical model, and anneal the noise; rows from the final model. zCDP ledger."""

    name = "dp_aim"
    Params = AIMConfig
    kind = "global"
    version = 1
    #: the DP noise and selections come from the OS CSPRNG, fresh per build, never stored
    deterministic = False
    requires = ("numpy",)
    extra = "dp"

    def output_schema(self, schema: pl.Schema, params: AIMConfig) -> pl.Schema:
        """Synthetic rows have the input's columns and dtypes."""
        return schema

    def run(self, inputs: dict[str, Any], params: AIMConfig, ctx: StepContext) -> StepOutput:
        from tamis.privacy.dp_marginal.aim import AIM

        return run_marginal(AIM(params), inputs, ctx)
