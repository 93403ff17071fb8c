"""Step `datalab`: cleanlab Datalab issue audit (outliers, near duplicates, non-IID, imbalance)."""

from __future__ import annotations

from typing import Any

import polars as pl

from tamis.curate.datalab import DatalabConfig, issue_columns
from tamis.pipelines.steps.base import Inputs, Step, StepContext, StepOutput


class DatalabStep(Step[DatalabConfig]):
    """Audit a dataset with cleanlab Datalab; adds is_<name>_issue / <name>_score columns.

    Global: the issues come from a k-nearest-neighbour graph over all rows.
    """

    name = "datalab"
    Params = DatalabConfig
    kind = "global"
    version = 2  # null labels dropped and counted (issue 12)

    def output_schema(self, schema: pl.Schema, params: DatalabConfig) -> pl.Schema:
        added = issue_columns(params.types())
        out: dict[str, Any] = {c: t for c, t in schema.items() if c not in added}
        out.update({c: pl.Boolean() if c.startswith("is_") else pl.Float64() for c in added})
        return pl.Schema(out)

    def run(self, inputs: Inputs, params: DatalabConfig, ctx: StepContext) -> StepOutput:
        from tamis.curate.datalab import datalab_issues

        config = params.model_copy(
            update={"embedding_model": ctx.local_path(params.embedding_model)}
        )
        out, report = datalab_issues(
            inputs["input"].collect(), config, seed=ctx.seed, progress=ctx.progress
        )
        tables = report.pop("tables")
        return StepOutput(frames={"data": out}, report=report, tables=tables)
