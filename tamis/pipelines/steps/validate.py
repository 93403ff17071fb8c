"""Step `validate`: Great Expectations checks on a version, as a gate (see tamis.curate.validate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from tamis.pipelines.steps.base import Step, StepContext, StepOutput, StepParams


class ValidateParams(StepParams):
    expectations: list[dict[str, Any]] = Field(
        default_factory=list,
        description="GX expectations: `- expect_...: {kwargs}` or `- {type: expect_..., kwargs: {}}`",
    )
    suite: str | None = Field(
        default=None, description="a GX suite JSON file (relative to the pipeline YAML)"
    )
    on_failure: Literal["fail", "warn"] = Field(
        default="fail", description="fail stops the build (exit 3, no version); warn records it"
    )
    mode: Literal["validate", "suggest"] = Field(
        default="validate",
        description="suggest writes a starter suite (suite.json in the version's artifacts)",
    )
    suggest_out: str | None = Field(
        default=None,
        description="suggest: also write the starter suite to this path (relative to the YAML)",
    )
    max_set_size: int = Field(
        default=20,
        ge=1,
        description="suggest: value sets for columns with at most this many values",
    )


class Validate(Step):
    """Check a version against Great Expectations expectations; optionally a failing gate.

    The data passes through unchanged; results go to the report. mode: suggest writes a starter
    suite from the data instead.
    """

    name = "validate"
    Params = ValidateParams
    version = 1

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        from tamis.curate.label_html import write_validation_html
        from tamis.curate.validate import suggest_suite, validate_frame, write_suite

        p: ValidateParams = params
        df = inputs["input"].collect()
        if p.mode == "suggest":
            ctx.progress("profiling columns")
            suite = suggest_suite(
                df, name=f"{ctx.pipeline}.{ctx.step}", max_set_size=p.max_set_size
            )
            write_suite(suite, ctx.artifacts_dir / "suite.json")
            report: dict[str, Any] = {
                "mode": "suggest",
                "expectations": len(suite["expectations"]),
                "suite_file": "suite.json",
                "suite": suite,
            }
            if p.suggest_out:
                out = Path(p.suggest_out)
                target = out if out.is_absolute() else ctx.base_dir / out
                report["suggest_out"] = str(write_suite(suite, target))
            return StepOutput(frames={"data": df}, report=report)
        suite_path = None
        if p.suite:
            suite_path = Path(p.suite) if Path(p.suite).is_absolute() else ctx.base_dir / p.suite
        ctx.progress("running expectations")
        report = validate_frame(
            df,
            expectations=p.expectations,
            suite=suite_path,
            on_failure=p.on_failure,
            name=f"{ctx.pipeline}.{ctx.step}",
        )
        report["mode"] = "validate"
        write_validation_html(report, ctx.artifacts_dir / "validation.html")
        report["html"] = "validation.html"
        return StepOutput(frames={"data": df}, report=report)
