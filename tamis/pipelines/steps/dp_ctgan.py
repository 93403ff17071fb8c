"""Step `dp_ctgan`: differentially private CTGAN (Opacus DP-SGD) with a privacy ledger."""

from __future__ import annotations

from typing import Any

import polars as pl

from tamis.pipelines.steps.base import Step, StepContext, StepOutput
from tamis.privacy.budget import budget_report
from tamis.privacy.dp.config import DPCTGANConfig


class DPCTGANStep(Step[DPCTGANConfig]):
    """Differentially private CTGAN: (epsilon, delta)-DP synthetic rows, with a privacy ledger.

    Preprocessing statistics are public metadata or DP mechanisms charged to the budget; the
    discriminator trains with Opacus DP-SGD; the report's `privacy_ledger` lists every mechanism
    and the composed total, which never exceeds the target (else the step refuses to run).
    """

    name = "dp_ctgan"
    Params = DPCTGANConfig
    kind = "global"
    version = 1
    #: the DP noise and batch sampling come from the OS CSPRNG, fresh per build, never stored:
    #: two builds with the same inputs, params and seed give different rows
    deterministic = False
    requires = ("torch", "opacus")
    extra = "privacy"

    def output_schema(self, schema: pl.Schema, params: DPCTGANConfig) -> pl.Schema:
        """Synthetic rows have the input's columns and dtypes."""
        return schema

    def run(self, inputs: dict[str, Any], params: DPCTGANConfig, ctx: StepContext) -> StepOutput:
        from tamis.privacy.dp.ctgan import DPCTGAN

        df = inputs["input"].collect()
        model = DPCTGAN(params, seed=ctx.seed)
        model.fit(df, progress=lambda msg, **kw: ctx.progress(msg, **kw))
        out = model.sample(params.rows or df.height, seed=ctx.seed)
        model.save(ctx.artifacts_dir / "dp_ctgan")
        assert model.ledger is not None
        report = {
            **budget_report(df.height, out.height, model.ledger.to_dict(), params.epsilon),
            "training": model.stats,
            "model": "dp_ctgan/ (generator.pt is a tensor-only state dict; dp_ctgan.json)",
        }
        return StepOutput(frames={"data": out}, report=report)
