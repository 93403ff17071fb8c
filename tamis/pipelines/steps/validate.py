"""Step `validate`: Great Expectations checks on a version, as a gate (see tamis.curate.validate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from tamis.curate.validate import ValidateConfig
from tamis.pipelines.steps.base import Inputs, Step, StepContext, StepOutput


class Validate(Step[ValidateConfig]):
    """Check a version against Great Expectations expectations; optionally a failing gate.

    The data passes through unchanged; results go to the report. mode: suggest writes a starter
    suite from the data instead. Global: expectations judge the whole table (row counts, value
    sets, uniqueness...).
    """

    name = "validate"
    Params = ValidateConfig
    kind = "global"
    version = 1

    def output_schema(self, schema: pl.Schema, params: ValidateConfig) -> pl.Schema:
        return schema

    def run(self, inputs: Inputs, params: ValidateConfig, ctx: StepContext) -> StepOutput:
        from tamis.curate.label_html import write_validation_html
        from tamis.curate.validate import validate_frame

        df = inputs["input"].collect()
        if params.mode == "suggest":
            return StepOutput(frames={"data": df}, report=self._suggest(df, params, ctx))
        ctx.progress("running expectations")
        report = validate_frame(
            df, params, name=f"{ctx.pipeline}.{ctx.step}", base_dir=ctx.base_dir
        )
        report["mode"] = "validate"
        write_validation_html(report, ctx.artifacts_dir / "validation.html")
        report["html"] = "validation.html"
        return StepOutput(frames={"data": df}, report=report)

    def _suggest(
        self, df: pl.DataFrame, params: ValidateConfig, ctx: StepContext
    ) -> dict[str, Any]:
        from tamis.curate.starter_suite import suggest_suite, write_suite

        ctx.progress("profiling columns")
        suite = suggest_suite(
            df, name=f"{ctx.pipeline}.{ctx.step}", max_set_size=params.max_set_size
        )
        write_suite(suite, ctx.artifacts_dir / "suite.json")
        report: dict[str, Any] = {
            "mode": "suggest",
            "expectations": len(suite["expectations"]),
            "suite_file": "suite.json",
            "suite": suite,
        }
        if params.suggest_out:
            out = Path(params.suggest_out)
            target = out if out.is_absolute() else ctx.base_dir / out
            report["suggest_out"] = str(write_suite(suite, target))
        return report
