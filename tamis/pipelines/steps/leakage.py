"""Step `leakage`: train/eval overlap, contamination, group/temporal/target leakage."""

from __future__ import annotations

import polars as pl

from tamis.curate.leakage import LeakageConfig
from tamis.pipelines.steps.base import Inputs, Step, StepContext, StepOutput


class Leakage(Step[LeakageConfig]):
    """Check the input against eval sets (`against`): overlap, contamination, group/time/target leakage.

    Drops or flags leaked rows of the input only; the eval sets are never changed. Global: target
    leakage needs the whole input (the row checks are joins an engine could run keyed).
    """

    name = "leakage"
    Params = LeakageConfig
    version = 2  # null labels dropped and counted (issue 12)
    inputs = ("input", "against")
    list_inputs = ("against",)

    def output_schema(self, schema: pl.Schema, params: LeakageConfig) -> pl.Schema:
        if params.action != "flag":
            return schema
        return pl.Schema(
            [
                *schema.items(),
                ("is_leakage_issue", pl.Boolean),
                ("leakage_score", pl.Float64),
                ("leakage_reasons", pl.List(pl.String)),
            ]
        )

    def run(self, inputs: Inputs, params: LeakageConfig, ctx: StepContext) -> StepOutput:
        from tamis.curate.dedup.html import write_leakage_html
        from tamis.curate.leakage import find_leakage

        df = inputs["input"].collect()
        against = inputs["against"]
        frames = against if isinstance(against, list) else [against]
        evals = {f"against_{i}": f.collect() for i, f in enumerate(frames)}
        ctx.progress("checking leakage")
        out, report, tables = find_leakage(df, evals, params, seed=ctx.seed)
        write_leakage_html(report, ctx.artifacts_dir / "leakage.html")
        report["html"] = "leakage.html"
        return StepOutput(frames={"data": out}, report=report, tables=tables)
