"""Step `dedup`: exact duplicate removal (see tamis.curate.dedup.exact_dedup)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tamis.pipelines.steps.base import Step, StepContext, StepOutput, StepParams


class DedupParams(StepParams):
    columns: Literal["all"] | list[str] = Field(
        default="all", description="columns compared: all, or a list of names"
    )
    normalize: bool | list[Literal["strip", "casefold", "nfkc"]] = Field(
        default=False,
        description="normalise strings before comparing: true = strip + casefold + nfkc, or a list",
    )
    round_floats: int | None = Field(
        default=None, ge=0, description="round float columns to this many decimals before comparing"
    )
    keep: Literal["first", "last", "none"] = Field(
        default="first", description="which row of a duplicate cluster survives"
    )
    action: Literal["drop", "flag"] = Field(
        default="drop",
        description="drop duplicates, or flag them (duplicate_cluster, is_duplicate_issue, duplicate_score)",
    )
    max_examples: int = Field(default=10, ge=0, description="largest clusters shown in the report")


class Dedup(Step):
    """Remove or flag rows that are identical on the chosen columns after normalisation.

    Streams the input (hash of every row, then exact grouping of the rows whose hash repeats), so it
    works on data larger than memory. The `clusters` table lists every duplicate cluster.
    """

    name = "dedup"
    Params = DedupParams
    version = 1

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        from tamis.curate.dedup import exact_dedup

        p: DedupParams = params
        ctx.progress("hashing rows")
        out, report, clusters = exact_dedup(
            inputs["input"],
            p.columns,
            normalize=p.normalize if isinstance(p.normalize, bool) else list(p.normalize),
            round_floats=p.round_floats,
            keep=p.keep,
            action=p.action,
            max_examples=p.max_examples,
            step=ctx.step,
        )
        from tamis.curate.dedup.html import write_dedup_html

        write_dedup_html(report, clusters, ctx.artifacts_dir / "dedup.html", "Exact duplicates")
        report["html"] = "dedup.html"
        return StepOutput(frames={"data": out}, report=report, tables={"clusters": clusters})
