"""Step `inject_label_noise`: corrupt labels on purpose for ablations (see tamis.curate.noise)."""

from __future__ import annotations

import polars as pl

from tamis.curate.noise import LabelNoiseConfig
from tamis.pipelines.steps.base import Inputs, Step, StepContext, StepOutput


class InjectLabelNoise(Step[LabelNoiseConfig]):
    """Flip a fraction of the labels (uniform or class-conditional); the truth goes to the report.

    The `noise` report table lists row, true_label and noisy_label of each flipped row. Global:
    which rows flip is drawn once over the whole input (exactly round(rate * n) for uniform).
    """

    name = "inject_label_noise"
    Params = LabelNoiseConfig
    kind = "global"
    version = 2  # truth_column (issue 12)

    def output_schema(self, schema: pl.Schema, params: LabelNoiseConfig) -> pl.Schema:
        if params.truth_column is None:
            return schema
        return pl.Schema([*schema.items(), (params.truth_column, pl.Boolean())])

    def run(self, inputs: Inputs, params: LabelNoiseConfig, ctx: StepContext) -> StepOutput:
        from tamis.curate.noise import inject_label_noise

        out, report = inject_label_noise(inputs["input"].collect(), params, seed=ctx.seed)
        tables = report.pop("tables")
        return StepOutput(frames={"data": out}, report=report, tables=tables)
