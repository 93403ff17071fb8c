"""`sample`: a seeded random sample of rows (by count or fraction, optionally stratified)."""

from __future__ import annotations

import polars as pl
from pydantic import Field, model_validator

from tamis.errors import StepError
from tamis.pipelines.steps.base import Inputs, Step, StepContext, StepOutput, StepParams


class SampleParams(StepParams):
    n: int | None = Field(None, ge=1, description="number of rows to draw")
    fraction: float | None = Field(None, gt=0, description="share of rows to draw")
    with_replacement: bool = Field(False, description="draw with replacement (bootstrap)")
    stratify: str | None = Field(None, description="draw the same fraction from every class")

    @model_validator(mode="after")
    def _one(self) -> SampleParams:
        if (self.n is None) == (self.fraction is None):
            raise ValueError("give exactly one of `n` or `fraction`")
        if self.fraction and self.fraction > 1 and not self.with_replacement:
            raise ValueError("fraction > 1 needs with_replacement: true")
        return self


class Sample(Step[SampleParams]):
    """Draw a seeded random sample of rows.

    Global: which rows are drawn depends on the whole input (its size and order).
    """

    name = "sample"
    Params = SampleParams
    kind = "global"

    def output_schema(self, schema: pl.Schema, params: SampleParams) -> pl.Schema:
        return schema

    def run(self, inputs: Inputs, params: SampleParams, ctx: StepContext) -> StepOutput:
        p = params
        df: pl.DataFrame = inputs["input"].collect()
        if p.n is not None and p.n > df.height and not p.with_replacement:
            raise StepError(
                f"n={p.n} is more than the {df.height} rows",
                field="params.n",
                fix="lower n or set with_replacement: true",
            )
        if p.stratify:
            if p.stratify not in df.columns:
                raise StepError(
                    f"no column '{p.stratify}'",
                    column=p.stratify,
                    field="params.stratify",
                    fix=f"columns: {', '.join(df.columns)}",
                )
            frac = p.fraction if p.fraction is not None else (p.n or 0) / max(df.height, 1)
            parts = [
                g.sample(fraction=frac, with_replacement=p.with_replacement, seed=ctx.seed + i)
                for i, g in enumerate(df.partition_by(p.stratify, maintain_order=True))
            ]
            out = pl.concat(parts) if parts else df.head(0)
        elif p.n is not None:
            out = df.sample(n=p.n, with_replacement=p.with_replacement, seed=ctx.seed)
        else:
            out = df.sample(fraction=p.fraction, with_replacement=p.with_replacement, seed=ctx.seed)
        return StepOutput(
            frames={"data": out}, report={"rows_in": df.height, "rows_out": out.height}
        )
