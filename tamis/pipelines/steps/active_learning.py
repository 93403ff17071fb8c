"""Step `active_learning`: rank items by how much one more label would help (cleanlab ActiveLab,
tamis.curate.annotation.active). Inputs: `input` (the items, labelled or not, with the model's
feature columns or probability columns) and `annotations` (a long (item, annotator, label)
table, e.g. a `tamis annotate import` version). Output: the items with `num_annotations`,
`active_learning_score` (low = label next) and `active_learning_rank` (1 = first), which
`tamis annotate export REF --top N` takes from. Params:
`tamis.curate.annotation.active.ActiveLearningConfig`.
"""

from __future__ import annotations

import polars as pl

from tamis.curate.annotation.active import ActiveLearningConfig
from tamis.pipelines.steps.base import Inputs, Step, StepContext, StepOutput


class ActiveLearning(Step[ActiveLearningConfig]):
    """ActiveLab ranking of what to label next (labelled items may get another label)."""

    name = "active_learning"
    kind = "global"  # ActiveLab needs every item and annotation (out-of-fold model)
    Params = ActiveLearningConfig
    inputs = ("input", "annotations")

    def output_schema(self, schema: pl.Schema, params: ActiveLearningConfig) -> pl.Schema:
        from tamis.curate.annotation.active import RANK_COLUMNS

        return pl.Schema({**schema, **RANK_COLUMNS})

    def run(self, inputs: Inputs, params: ActiveLearningConfig, ctx: StepContext) -> StepOutput:
        from tamis.curate.annotation.active import rank_for_labeling

        ctx.progress("ActiveLab scores")
        out, report = rank_for_labeling(
            inputs["input"].collect(), inputs["annotations"].collect(), params, seed=ctx.seed
        )
        return StepOutput(frames={"data": out}, report=report)
