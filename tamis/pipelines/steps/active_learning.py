"""Step `active_learning`: rank items by how much one more label would help (cleanlab ActiveLab,
tamis.curate.annotation.active). Inputs: `input` (the items, labelled or not, with the model's
feature columns or probability columns) and `annotations` (a long (item, annotator, label)
table, e.g. a `tamis annotate import` version). Output: the items with `num_annotations`,
`active_learning_score` (low = label next) and `active_learning_rank` (1 = first), which
`tamis annotate export REF --top N` takes from.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tamis.pipelines.steps.base import Step, StepContext, StepOutput, StepParams


class ActiveLearningParams(StepParams):
    item: str = Field(default="item", description="the items' id column")
    annotation_item: str = Field(
        default="item", description="the annotations' item column (ids matched as text)"
    )
    annotator: str = Field(default="annotator", description="the annotations' annotator column")
    label: str = Field(default="label", description="the annotations' label column")
    features: list[str] | None = Field(
        default=None, description="item columns for tamis's default model"
    )
    text: str | None = Field(default=None, description="an item text column for the model")
    probs: list[str] | None = Field(
        default=None,
        description="instead of a model: one predicted-probability column per class (sorted)",
    )
    folds: int = Field(default=5, ge=2, description="folds of the out-of-fold model")


class ActiveLearning(Step):
    """ActiveLab ranking of what to label next (labelled items may get another label)."""

    name = "active_learning"
    Params = ActiveLearningParams
    inputs = ("input", "annotations")

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        from tamis.curate.annotation.active import rank_for_labeling

        p: ActiveLearningParams = params
        ctx.progress("ActiveLab scores")
        out, report = rank_for_labeling(
            inputs["input"].collect(),
            inputs["annotations"].collect(),
            item=p.item,
            annotation_item=p.annotation_item,
            annotator=p.annotator,
            label=p.label,
            features=p.features,
            text=p.text,
            probs=p.probs,
            folds=p.folds,
            seed=ctx.seed,
        )
        return StepOutput(frames={"data": out}, report=report)
