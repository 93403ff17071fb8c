"""Step `preference_curate`: clean preference pairs and diagnose (optionally fix) length bias.

Drops identical and empty pairs and exact duplicate pairs (via tamis.curate.dedup), optionally
near-duplicate prompts (tamis.curate.near_dedup) and prompts that leak into eval sets given as
`against:` (tamis.curate.leakage); reports length bias before and after; `rebalance_length`
downsamples so length stops predicting the label. Outputs data, sft, prompts, dropped.
See tamis/curate/preferences/curate.py.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tamis.pipelines.steps.base import Step, StepContext, StepOutput, StepParams


class PreferenceCurateParams(StepParams):
    drop_identical: bool = Field(True, description="drop pairs whose chosen equals rejected")
    drop_empty: bool = Field(True, description="drop pairs with an empty prompt or response")
    dedup_pairs: bool = Field(True, description="drop exact duplicate (prompt, chosen, rejected)")
    dedup_normalize: bool = Field(
        True, description="compare duplicates after strip + casefold + NFKC"
    )
    near_dedup_prompts: bool = Field(
        False,
        description="drop pairs whose prompt is a near duplicate of an earlier, different prompt",
    )
    near_threshold: float = Field(
        0.8, gt=0.0, le=1.0, description="word 5-gram Jaccard at which prompts are near duplicates"
    )
    against_column: str = Field(
        "prompt", description="the prompt column of the `against` eval sets (text or messages)"
    )
    leakage_near_threshold: float | None = Field(
        0.8,
        gt=0.0,
        le=1.0,
        description="near-duplicate Jaccard counted as leakage into `against` (null: exact and "
        "13-gram overlap only)",
    )
    rebalance_length: bool = Field(
        False,
        description="downsample so chosen is longer in as many pairs as it is shorter (seeded)",
    )
    length_unit: Literal["chars", "words"] = Field("chars", description="how length is counted")


class PreferenceCurate(Step):
    """Drop identical, empty, duplicate and eval-leaked preference pairs; report and fix length bias.

    Optional input `against`: eval sets (one or a list) whose prompts must not appear in the output.
    """

    name = "preference_curate"
    Params = PreferenceCurateParams
    version = 1
    outputs = ("data", "sft", "prompts", "dropped")
    optional_inputs = ("against",)
    list_inputs = ("against",)

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        from tamis.curate.preferences import curate_pairs, to_prompts, to_sft

        p: PreferenceCurateParams = params
        against = inputs.get("against")
        frames_in = [] if against is None else against if isinstance(against, list) else [against]
        evals = {f"against_{i}": f.collect() for i, f in enumerate(frames_in)}
        res = curate_pairs(
            inputs["input"].collect(),
            drop_identical=p.drop_identical,
            drop_empty=p.drop_empty,
            dedup_pairs=p.dedup_pairs,
            dedup_normalize=p.dedup_normalize,
            near_dedup_prompts=p.near_dedup_prompts,
            near_threshold=p.near_threshold,
            against=evals or None,
            against_column=p.against_column,
            leakage_near_threshold=p.leakage_near_threshold,
            rebalance_length=p.rebalance_length,
            length_unit=p.length_unit,
            seed=ctx.seed,
        )
        frames: dict[str, Any] = {
            "data": res.pairs,
            "sft": to_sft(res.pairs),
            "prompts": to_prompts(res.pairs),
            "dropped": res.dropped,
        }
        from tamis.curate.preferences.html import write_html

        write_html(res.report, ctx.artifacts_dir / "preferences.html", res.pairs)
        return StepOutput(frames=frames, report=res.report)
