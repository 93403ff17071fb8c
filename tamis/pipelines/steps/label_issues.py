"""Step `label_issues`: confident-learning label-error detection (see tamis.curate.label_issues)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tamis.pipelines.steps.base import Step, StepContext, StepOutput, StepParams


class LabelIssuesParams(StepParams):
    label: str = Field(description="the label column")
    features: list[str] | None = Field(
        default=None,
        description="feature columns (default: all but the label; none when `text` is set)",
    )
    text: str | None = Field(
        default=None, description="a text column (TF-IDF + logistic regression)"
    )
    pred_probs: str | None = Field(
        default=None,
        description="a list column of precomputed out-of-fold class probabilities (sorted class order)",
    )
    model: Literal["auto", "logreg", "gbm"] = Field(
        default="auto", description="auto = logistic regression; gbm = histogram gradient boosting"
    )
    embedding_model: str | None = Field(
        default=None,
        description="local (sentence-)transformer directory to embed `text` with (tamis[train])",
    )
    folds: int = Field(
        default=5, ge=2, description="cross-validation folds (reduced for tiny classes)"
    )
    filter_by: Literal[
        "prune_by_noise_rate",
        "prune_by_class",
        "both",
        "confident_learning",
        "predicted_neq_given",
        "low_normalized_margin",
        "low_self_confidence",
    ] = Field(default="prune_by_noise_rate", description="cleanlab find_label_issues filter_by")
    action: Literal["flag", "drop", "relabel"] = Field(
        default="flag",
        description="flag keeps rows; drop removes issues; relabel uses suggested_label",
    )
    n_jobs: int | None = Field(default=None, description="parallel folds (None = sequential)")
    blas_threads: int | None = Field(
        default=1, description="BLAS threads during the fits (None = library default)"
    )
    top: int = Field(default=20, ge=0, description="worst rows listed in the report")
    truth: str | None = Field(
        default=None,
        description="a column with the known truth (boolean: label is wrong, or the true label):"
        " the report gives detection precision/recall; default is_injected_noise when present",
    )
    min_skill: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="warn when the out-of-fold model's skill over the majority class is below this",
    )


class LabelIssues(Step):
    """Find mislabelled rows with cleanlab on out-of-fold predicted probabilities.

    Adds is_label_issue, label_quality_score (low = likely wrong) and suggested_label. Rows with
    a null label are dropped (null_labels_dropped); a model too weak to trust gets a warning.
    """

    name = "label_issues"
    Params = LabelIssuesParams
    version = 2  # null labels dropped and counted (issue 12)

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        from tamis.curate.label_html import write_label_issues_html
        from tamis.curate.label_issues import find_label_issues

        p: LabelIssuesParams = params
        df = inputs["input"].collect()
        out, report = find_label_issues(
            df,
            label=p.label,
            features=p.features,
            text=p.text,
            pred_probs=p.pred_probs,
            model=p.model,
            embedding_model=ctx.local_path(p.embedding_model),
            folds=p.folds,
            filter_by=p.filter_by,
            action=p.action,
            seed=ctx.seed,
            n_jobs=p.n_jobs,
            blas_threads=p.blas_threads,
            top=p.top,
            truth=p.truth,
            min_skill=p.min_skill,
            progress=ctx.progress,
        )
        tables = report.pop("tables")
        write_label_issues_html(
            report, ctx.artifacts_dir / "label_issues.html", out["label_quality_score"]
        )
        report["html"] = "label_issues.html"
        return StepOutput(frames={"data": out}, report=report, tables=tables)
