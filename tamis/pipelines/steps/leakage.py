"""Step `leakage`: train/eval overlap, contamination, group/temporal/target leakage."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tamis.pipelines.steps.base import Step, StepContext, StepOutput, StepParams

Check = Literal["exact", "near", "ngram", "group", "temporal"]


class LeakageParams(StepParams):
    columns: Literal["all"] | list[str] = Field(
        default="all",
        description="key of the exact check: all (shared columns minus label/group/time) or a list",
    )
    normalize: bool | list[Literal["strip", "casefold", "nfkc"]] = Field(
        default=False, description="normalise strings of the key (as in dedup)"
    )
    round_floats: int | None = Field(default=None, ge=0, description="round floats of the key")
    label: str | None = Field(default=None, description="label: conflicting labels, target leakage")
    group: str | None = Field(default=None, description="entity id column: group leakage")
    time: str | None = Field(default=None, description="time column: temporal leakage")
    text: str | None = Field(
        default=None, description="text column: n-gram contamination, near overlap"
    )
    ngram: int = Field(default=13, ge=1, le=64, description="contamination n-gram size (words)")
    near_threshold: float | None = Field(
        default=0.8, gt=0, le=1, description="near-overlap Jaccard threshold (null: skip)"
    )
    near_ngram: int = Field(default=5, ge=1, le=64, description="near-overlap shingle size (words)")
    num_perm: int = Field(default=128, ge=8, le=1024, description="MinHash permutations")
    target_auc_threshold: float | None = Field(
        default=0.99, gt=0.5, le=1, description="flag features with CV AUC >= this (null: skip)"
    )
    features: list[str] | None = Field(
        default=None, description="features tested for target leakage"
    )
    cv_folds: int = Field(default=5, ge=2, le=20, description="folds of the target-leakage AUC")
    drop_on: list[Check] = Field(
        default=["exact", "near", "ngram", "group", "temporal"],
        description="row checks whose hits count as leaked for drop/flag",
    )
    action: Literal["report", "drop", "flag"] = Field(
        default="report",
        description="report only; drop leaked input rows (never eval rows); or flag them",
    )
    max_table_rows: int = Field(default=1_000_000, ge=0, description="cap on each detail table")


class Leakage(Step):
    """Check the input against eval sets (`against`): overlap, contamination, group/time/target leakage.

    Drops or flags leaked rows of the input only; the eval sets are never changed.
    """

    name = "leakage"
    Params = LeakageParams
    version = 2  # null labels dropped and counted (issue 12)
    inputs = ("input", "against")
    list_inputs = ("against",)

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        from tamis.curate.leakage import find_leakage

        p: LeakageParams = params
        df = inputs["input"].collect()
        against = inputs["against"]
        frames = against if isinstance(against, list) else [against]
        evals = {f"against_{i}": f.collect() for i, f in enumerate(frames)}
        ctx.progress("checking leakage")
        out, report, tables = find_leakage(
            df,
            evals,
            columns=p.columns,
            normalize=p.normalize if isinstance(p.normalize, bool) else list(p.normalize),
            round_floats=p.round_floats,
            label=p.label,
            group=p.group,
            time=p.time,
            text_column=p.text,
            ngram=p.ngram,
            near_threshold=p.near_threshold,
            near_ngram=p.near_ngram,
            num_perm=p.num_perm,
            target_auc_threshold=p.target_auc_threshold,
            features=p.features,
            cv_folds=p.cv_folds,
            drop_on=list(p.drop_on),
            action=p.action,
            seed=ctx.seed,
            max_table_rows=p.max_table_rows,
            step=ctx.step,
        )
        from tamis.curate.dedup.html import write_leakage_html

        write_leakage_html(report, ctx.artifacts_dir / "leakage.html")
        report["html"] = "leakage.html"
        return StepOutput(frames={"data": out}, report=report, tables=tables)
