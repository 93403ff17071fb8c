"""Step `datalab`: cleanlab Datalab issue audit (outliers, near duplicates, non-IID, imbalance)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tamis.pipelines.steps.base import Step, StepContext, StepOutput, StepParams


class DatalabParams(StepParams):
    label: str | None = Field(
        default=None, description="the label column (for class_imbalance, label)"
    )
    features: list[str] | None = Field(
        default=None, description="feature columns (default: all but the label; none with `text`)"
    )
    text: str | None = Field(default=None, description="a text column (TF-IDF -> truncated SVD)")
    issue_types: list[str] | None = Field(
        default=None,
        description="Datalab issue types (default outlier, near_duplicate, non_iid,"
        " class_imbalance); also label, null, underperforming_group, data_valuation",
    )
    pred_probs: str | None = Field(
        default=None, description="a list column of precomputed class probabilities (label issues)"
    )
    model: Literal["auto", "logreg", "gbm"] = Field(
        default="auto", description="model for the label issue type"
    )
    embedding_model: str | None = Field(
        default=None, description="local (sentence-)transformer directory to embed `text` with"
    )
    folds: int = Field(default=5, ge=2, description="cross-validation folds (label issue type)")
    svd_dims: int = Field(default=100, ge=1, description="text: TF-IDF reduced to this many dims")
    metric: Literal["auto", "euclidean", "cosine"] = Field(
        default="auto", description="kNN metric: auto = euclidean (tabular) / cosine (text)"
    )
    action: Literal["flag", "drop"] = Field(
        default="flag", description="flag keeps rows; drop removes rows with any issue"
    )


class DatalabStep(Step):
    """Audit a dataset with cleanlab Datalab; adds is_<name>_issue / <name>_score columns."""

    name = "datalab"
    Params = DatalabParams
    version = 2  # null labels dropped and counted (issue 12)

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        from tamis.curate.datalab import datalab_issues

        p: DatalabParams = params
        out, report = datalab_issues(
            inputs["input"].collect(),
            label=p.label,
            features=p.features,
            text=p.text,
            issue_types=p.issue_types,
            pred_probs=p.pred_probs,
            model=p.model,
            embedding_model=ctx.local_path(p.embedding_model),
            folds=p.folds,
            svd_dims=p.svd_dims,
            action=p.action,
            metric=p.metric,
            seed=ctx.seed,
            progress=ctx.progress,
        )
        tables = report.pop("tables")
        return StepOutput(frames={"data": out}, report=report, tables=tables)
