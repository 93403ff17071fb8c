"""Step `near_dedup`: near-duplicate removal, text (MinHash + LSH) or tabular (blocking)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from tamis.errors import StepError
from tamis.pipelines.steps.base import Step, StepContext, StepOutput, StepParams


class NearDedupParams(StepParams):
    column: str | None = Field(default=None, description="text column (text mode)")
    unit: Literal["word", "char"] = Field(
        default="word", description="shingle on words or characters"
    )
    ngram: int = Field(default=5, ge=1, le=64, description="shingle size in words or characters")
    num_perm: int = Field(default=128, ge=8, le=1024, description="MinHash permutations")
    threshold: float = Field(
        default=0.8, gt=0, le=1, description="Jaccard threshold (true Jaccard)"
    )
    bands: int | None = Field(default=None, ge=1, description="LSH bands (default: from threshold)")
    rows: int | None = Field(
        default=None, ge=1, description="LSH rows per band (default: from threshold)"
    )
    lowercase: bool = Field(default=True, description="lower-case text before shingling")
    nfkc: bool = Field(default=True, description="Unicode NFKC-normalise text before shingling")
    categorical: list[str] | None = Field(
        default=None, description="tabular mode: columns that must match (after strip/casefold)"
    )
    numeric: list[str] | None = Field(
        default=None, description="tabular mode: columns that must be within `tolerance`"
    )
    tolerance: float | dict[str, float] = Field(
        default=0.0, ge=0, description="tabular mode: absolute tolerance, one or per column"
    )
    keep: Literal["first", "last", "none"] = Field(default="first", description="cluster survivor")
    action: Literal["drop", "flag"] = Field(
        default="drop",
        description="drop, or flag (near_duplicate_cluster, is_near_duplicate_issue, near_duplicate_score)",
    )
    max_examples: int = Field(default=10, ge=0, description="largest clusters shown in the report")

    @model_validator(mode="after")
    def _mode(self) -> NearDedupParams:
        if self.column is None and self.categorical is None and self.numeric is None:
            raise ValueError("give `column` (text) or `categorical`/`numeric` (tabular)")
        if self.column is not None and (self.categorical or self.numeric):
            raise ValueError("give either `column` (text) or `categorical`/`numeric`, not both")
        return self


class NearDedup(Step):
    """Remove or flag near-duplicate rows: text by MinHash + LSH + exact Jaccard, tabular by blocking.

    Text mode verifies every LSH candidate by its true Jaccard and clusters by connected components;
    the report carries the Jaccard histogram of the checked pairs. Tables: `clusters`, `pairs`.
    """

    name = "near_dedup"
    Params = NearDedupParams
    version = 1

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        from tamis.curate.dedup import near_dedup_tabular, near_dedup_text

        p: NearDedupParams = params
        df = inputs["input"].collect()
        if p.column is not None:
            ctx.progress("MinHash + LSH")
            out, report, clusters, pairs = near_dedup_text(
                df,
                p.column,
                unit=p.unit,
                ngram=p.ngram,
                num_perm=p.num_perm,
                threshold=p.threshold,
                bands=p.bands,
                rows=p.rows,
                seed=ctx.seed,
                lowercase=p.lowercase,
                nfkc=p.nfkc,
                keep=p.keep,
                action=p.action,
                max_examples=p.max_examples,
                step=ctx.step,
            )
        else:
            if isinstance(p.tolerance, dict) and any(v < 0 for v in p.tolerance.values()):
                raise StepError("tolerances must be >= 0", field="params.tolerance")
            ctx.progress("blocking")
            out, report, clusters, pairs = near_dedup_tabular(
                df,
                p.categorical,
                p.numeric,
                tolerance=p.tolerance,
                keep=p.keep,
                action=p.action,
                max_examples=p.max_examples,
                step=ctx.step,
            )
        from tamis.curate.dedup.html import write_dedup_html

        write_dedup_html(report, clusters, ctx.artifacts_dir / "near_dedup.html", "Near duplicates")
        report["html"] = "near_dedup.html"
        return StepOutput(
            frames={"data": out}, report=report, tables={"clusters": clusters, "pairs": pairs}
        )
