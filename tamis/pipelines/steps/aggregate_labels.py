"""Step `aggregate_labels`: weigh raters (tamis.curate.annotation.aggregate).

`method: dawid_skene` (default) or `majority`: a long `(item, annotator, label)` table -> one row
per item with the consensus label, its confidence and `num_annotations`; tables `raters`,
`confusion` and, with `gold`, `gold_drift`. `method: bradley_terry`: `(left, right, winner)` votes
-> one row per compared thing with its score and rank; table `raters`. Params:
`tamis.curate.annotation.aggregate.AggregateLabelsConfig`.
"""

from __future__ import annotations

import polars as pl

from tamis.curate.annotation.aggregate import AggregateLabelsConfig
from tamis.pipelines.steps.base import Inputs, Step, StepContext, StepOutput


class AggregateLabels(Step[AggregateLabelsConfig]):
    """Weigh raters: Dawid-Skene (or majority) consensus with per-rater confusion matrices, gold
    accuracy and drift; or Bradley-Terry scores from pairwise votes."""

    name = "aggregate_labels"
    kind = "global"  # Dawid-Skene EM and Bradley-Terry fit over all annotations
    Params = AggregateLabelsConfig

    def output_schema(self, schema: pl.Schema, params: AggregateLabelsConfig) -> pl.Schema:
        from tamis.curate.annotation.aggregate import aggregate_schema

        return aggregate_schema(schema, params)

    def run(self, inputs: Inputs, params: AggregateLabelsConfig, ctx: StepContext) -> StepOutput:
        from tamis.curate.annotation.aggregate import aggregate_labels

        out, report, tables = aggregate_labels(inputs["input"].collect(), params, seed=ctx.seed)
        return StepOutput(frames={"data": out}, report=report, tables=tables)
