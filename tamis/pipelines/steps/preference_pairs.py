"""Step `preference_pairs`: raw feedback -> preference pairs for reward models, DPO and PPO.

`from:` transcripts (HH-RLHF), ratings (UltraFeedback style), rankings or votes. Outputs: `data`
(prompt, chosen, rejected: what TRL's DPOTrainer and RewardTrainer read), `sft` (prompt,
completion from chosen), `prompts` (prompt only, for RL), `dropped` (every dropped row/pair/prompt
with its reason) and, with `from: votes` and `below: adjudicate`, `adjudicate`.
Params: `tamis.curate.preferences.PreferencePairsConfig`; see docs/preferences.md.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from tamis.curate.preferences.config import PreferencePairsConfig
from tamis.pipelines.steps.base import Inputs, Step, StepContext, StepOutput


def pair_outputs(pairs: pl.DataFrame) -> dict[str, pl.DataFrame | pl.LazyFrame]:
    """The pairs and their SFT and prompt-only views (outputs data, sft, prompts)."""
    from tamis.curate.preferences import to_prompts, to_sft

    return {"data": pairs, "sft": to_sft(pairs), "prompts": to_prompts(pairs)}


class PreferencePairs(Step[PreferencePairsConfig]):
    """Build preference pairs (prompt, chosen, rejected) from transcripts, ratings, rankings or votes.

    Outputs data (pairs), sft (prompt, completion), prompts (for RL), dropped (with reasons) and,
    for votes with `below: adjudicate`, adjudicate.
    """

    name = "preference_pairs"
    kind = "global"  # pairs pool the rows of a prompt (ratings, rankings, votes); prompts dedups
    Params = PreferencePairsConfig
    version = 1
    outputs = ("data", "sft", "prompts", "dropped")

    def output_names(self, params: PreferencePairsConfig) -> tuple[str, ...]:
        if params.kind == "votes" and params.below == "adjudicate":
            return (*self.outputs, "adjudicate")
        return self.outputs

    def output_schema(self, schema: pl.Schema, params: PreferencePairsConfig) -> pl.Schema:
        from tamis.curate.preferences.schema import pairs_schema

        return pairs_schema(params, schema)

    def run(self, inputs: Inputs, params: PreferencePairsConfig, ctx: StepContext) -> StepOutput:
        from tamis.curate.preferences import preference_pairs
        from tamis.curate.preferences.html import write_html

        ctx.progress(f"preference pairs from {params.kind}")
        res = preference_pairs(
            inputs["input"].collect(), params, seed=ctx.seed, progress=ctx.progress
        )
        frames: dict[str, Any] = {**pair_outputs(res.pairs), "dropped": res.dropped}
        if "adjudicate" in self.output_names(params):
            assert res.adjudicate is not None
            frames["adjudicate"] = res.adjudicate
        write_html(res.report, ctx.artifacts_dir / "preferences.html", res.pairs)
        return StepOutput(frames=frames, report=res.report)
