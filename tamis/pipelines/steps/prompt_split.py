"""Step `prompt_split`: split preference (or SFT/prompt) data so no prompt lands in two parts.

Each distinct prompt (all its turns, text or messages) is placed by a seeded hash of its text, so
every pair of a prompt goes to the same part and adding rows never moves a prompt. One output per
part (`step.<part>`). Params: `tamis.curate.preferences.PromptSplitConfig`.
"""

from __future__ import annotations

import polars as pl

from tamis.curate.preferences.split import PromptSplitConfig
from tamis.pipelines.steps.base import Inputs, Step, StepContext, StepOutput


class PromptSplit(Step[PromptSplitConfig]):
    """Split pairs by prompt into named parts (no prompt in two parts); seeded and stable."""

    name = "prompt_split"
    kind = "global"  # one output per part; near-duplicate prompts group across rows
    Params = PromptSplitConfig
    version = 1
    outputs = ()

    def output_names(self, params: PromptSplitConfig) -> tuple[str, ...]:
        return tuple(params.fractions)

    def output_schema(self, schema: pl.Schema, params: PromptSplitConfig) -> pl.Schema:
        return schema  # every part keeps the input's columns

    def run(self, inputs: Inputs, params: PromptSplitConfig, ctx: StepContext) -> StepOutput:
        from tamis.curate.preferences import split_by_prompt

        frames, report = split_by_prompt(inputs["input"].collect(), params, seed=ctx.seed)
        return StepOutput(frames=dict(frames), report=report)
