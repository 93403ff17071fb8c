"""Step `prompt_split`: split preference (or SFT/prompt) data so no prompt lands in two parts.

Each distinct prompt (all its turns, text or messages) is placed by a seeded hash of its text, so
every pair of a prompt goes to the same part and adding rows never moves a prompt. One output per
part (`step.<part>`). See tamis/curate/preferences/curate.py.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tamis.pipelines.steps.base import Step, StepContext, StepOutput, StepParams


class PromptSplitParams(StepParams):
    fractions: dict[str, float] = Field(
        default_factory=lambda: {"train": 0.9, "test": 0.1},
        description="part name -> share of prompts (sum to 1); each part is an output",
    )
    near_threshold: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="also keep near-duplicate prompts (word 5-gram Jaccard >= this) in one part",
    )


class PromptSplit(Step):
    """Split pairs by prompt into named parts (no prompt in two parts); seeded and stable."""

    name = "prompt_split"
    Params = PromptSplitParams
    version = 1
    outputs = ()

    def output_names(self, params: Any) -> tuple[str, ...]:
        return tuple(params.fractions)

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        from tamis.curate.preferences import split_by_prompt

        p: PromptSplitParams = params
        frames, report = split_by_prompt(
            inputs["input"].collect(), p.fractions, ctx.seed, near_threshold=p.near_threshold
        )
        return StepOutput(frames=dict(frames), report=report)
