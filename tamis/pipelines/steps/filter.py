"""`filter`: keep rows matching a SQL boolean expression (Polars) or a DuckDB query."""

from __future__ import annotations

from typing import Any

import polars as pl
from pydantic import Field, model_validator

from tamis.errors import StepError
from tamis.pipelines.steps.base import Step, StepContext, StepOutput, StepParams


class FilterParams(StepParams):
    where: str | None = Field(
        None,
        description='SQL boolean expression over the columns, e.g. "age >= 18 AND x IS NOT NULL"',
    )
    query: str | None = Field(
        None,
        description="a whole DuckDB SELECT over the table `input` (for joins, windows, ...)",
    )

    @model_validator(mode="after")
    def _one(self) -> FilterParams:
        if (self.where is None) == (self.query is None):
            raise ValueError("give exactly one of `where` or `query`")
        return self


class Filter(Step):
    """Keep the rows that satisfy an expression; the report says how many were removed."""

    name = "filter"
    Params = FilterParams

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        p: FilterParams = params
        lf: pl.LazyFrame = inputs["input"]
        rows_in = lf.select(pl.len()).collect().item()
        try:
            if p.where is not None:
                out = lf.filter(pl.sql_expr(p.where)).collect()
            else:
                import duckdb

                con = duckdb.connect()
                try:
                    con.register("input", lf.collect().to_arrow())
                    table = con.sql(p.query or "").to_arrow_table()
                finally:
                    con.close()
                out = pl.DataFrame(pl.from_arrow(table))
        except Exception as exc:
            raise StepError(
                f"the expression failed: {exc}", fix="check column names and SQL syntax"
            ) from exc
        report = {"rows_in": rows_in, "rows_out": out.height, "removed": rows_in - out.height}
        return StepOutput(frames={"data": out}, report=report)
