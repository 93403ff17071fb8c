"""Step `datalab`: cleanlab Datalab issue audit (outliers, near duplicates, non-IID, imbalance)."""

from __future__ import annotations

from typing import Any

import polars as pl

from tamis.curate.datalab import DatalabConfig, issue_columns
from tamis.pipelines.steps.base import Inputs, Step, StepContext, StepOutput
from tamis.pipelines.steps.label_issues import run_label_model


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

        out, report, tables = run_label_model(datalab_issues, inputs, params, ctx)
        return StepOutput(frames={"data": out}, report=report, tables=tables)
