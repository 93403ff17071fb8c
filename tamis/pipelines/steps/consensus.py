"""Step `consensus`: a multi-annotator table -> one labelled row per item (tamis.curate.consensus)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tamis.pipelines.steps.base import Step, StepContext, StepOutput, StepParams


class ConsensusParams(StepParams):
    item: str = Field(default="item", description="the item id column")
    annotator: str = Field(default="annotator", description="the annotator id column")
    label: str = Field(default="label", description="the label column")
    gold: str | None = Field(default=None, description="a gold-label column (null where none)")
    time: str | None = Field(
        default=None, description="a date/datetime or numeric column for gold-drift windows"
    )
    method: Literal["crowdlab", "majority"] = Field(
        default="crowdlab", description="consensus: CROWDLAB best quality, or majority vote"
    )
    features: list[str] | None = Field(
        default=None, description="item-level feature columns for the CROWDLAB model"
    )
    text: str | None = Field(default=None, description="an item-level text column for the model")
    min_agreement: float = Field(
        default=0.5, ge=0.0, le=1.0, description="items whose annotator agreement is below: low"
    )
    min_annotations: int = Field(default=1, ge=1, description="items with fewer labels: low")
    low_agreement: Literal["flag", "drop", "adjudicate"] = Field(
        default="flag",
        description="flag keeps them; drop removes them; adjudicate removes and exports them",
    )
    window: str | int = Field(
        default=50, description="gold-drift window: '1w' for dates, a number otherwise"
    )
    drift_threshold: float = Field(
        default=0.1, ge=0.0, le=1.0, description="accuracy drop vs the first window that counts"
    )
    min_window_items: int = Field(default=10, ge=1, description="gold items a window needs")
    folds: int = Field(default=5, ge=2, description="folds of the item model (with features)")


class Consensus(Step):
    """Turn a long (item, annotator, label) table into one row per item with agreement columns.

    Reports Cohen's kappa per pair, Fleiss' kappa, Krippendorff's alpha, annotator quality
    (CROWDLAB) and gold accuracy drift; low-agreement items can go to an adjudication list.
    """

    name = "consensus"
    Params = ConsensusParams
    version = 2  # null labels dropped and counted (issue 12)

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        from tamis.curate.consensus import consensus
        from tamis.curate.label_html import write_consensus_html

        p: ConsensusParams = params
        out, report = consensus(
            inputs["input"].collect(),
            item=p.item,
            annotator=p.annotator,
            label=p.label,
            gold=p.gold,
            time=p.time,
            method=p.method,
            features=p.features,
            text=p.text,
            min_agreement=p.min_agreement,
            min_annotations=p.min_annotations,
            low_agreement=p.low_agreement,
            window=p.window,
            drift_threshold=p.drift_threshold,
            min_window_items=p.min_window_items,
            folds=p.folds,
            seed=ctx.seed,
            progress=ctx.progress,
        )
        tables = report.pop("tables")
        write_consensus_html(report, tables, ctx.artifacts_dir / "agreement.html")
        report["html"] = "agreement.html"
        if p.low_agreement == "adjudicate":
            tables["adjudication"].write_csv(ctx.artifacts_dir / "adjudication.csv")
            report["adjudication_file"] = "adjudication.csv"
        return StepOutput(frames={"data": out}, report=report, tables=tables)
