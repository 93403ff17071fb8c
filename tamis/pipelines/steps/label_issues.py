"""Step `label_issues`: confident-learning label-error detection (see tamis.curate.label_issues)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import polars as pl

from tamis.curate.label_issues import LabelIssuesConfig, issue_columns_schema
from tamis.curate.pred_probs import LabelModelConfig
from tamis.pipelines.steps.base import Inputs, Step, StepContext, StepOutput

C = TypeVar("C", bound=LabelModelConfig)


def run_label_model(
    capability: Callable[..., tuple[pl.DataFrame, dict[str, Any]]],
    inputs: Inputs,
    params: C,
    ctx: StepContext,
) -> tuple[pl.DataFrame, dict[str, Any], dict[str, pl.DataFrame]]:
    """Run a label-model capability (label_issues, datalab) on the whole input: the output, the
    report and its tables. A relative `embedding_model` is found beside the pipeline YAML."""
    config = params.model_copy(update={"embedding_model": ctx.local_path(params.embedding_model)})
    out, report = capability(
        inputs["input"].collect(), config, seed=ctx.seed, progress=ctx.progress
    )
    return out, report, report.pop("tables")


class LabelIssues(Step[LabelIssuesConfig]):
    """Find mislabelled rows with cleanlab on out-of-fold predicted probabilities.

    Adds is_label_issue, label_quality_score (low = likely wrong) and suggested_label. Rows with
    a null label are dropped (null_labels_dropped); a model too weak to trust gets a warning.
    Global: every row's probabilities come from cross-validation over the whole input.
    """

    name = "label_issues"
    Params = LabelIssuesConfig
    kind = "global"
    version = 2  # null labels dropped and counted (issue 12)

    def output_schema(self, schema: pl.Schema, params: LabelIssuesConfig) -> pl.Schema:
        return issue_columns_schema(schema, params.label)

    def run(self, inputs: Inputs, params: LabelIssuesConfig, ctx: StepContext) -> StepOutput:
        from tamis.curate.label_html import write_label_issues_html
        from tamis.curate.label_issues import find_label_issues

        out, report, tables = run_label_model(find_label_issues, inputs, params, ctx)
        write_label_issues_html(
            report, ctx.artifacts_dir / "label_issues.html", out["label_quality_score"]
        )
        report["html"] = "label_issues.html"
        return StepOutput(frames={"data": out}, report=report, tables=tables)
