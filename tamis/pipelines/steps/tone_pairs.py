"""Step `tone_pairs`: a synthetic tone-control preference set (a generator: no inputs).

Chosen = a concise, friendly reply; rejected = a verbose, formal one; same facts in both. Every row
has `synthetic = true` and the report says `synthetic: true`. Params:
`tamis.curate.preferences.TonePairsConfig`.
"""

from __future__ import annotations

import polars as pl

from tamis.curate.preferences.tone import TonePairsConfig
from tamis.pipelines.steps.base import Inputs, Step, StepContext, StepOutput
from tamis.pipelines.steps.preference_pairs import pair_outputs


class TonePairs(Step[TonePairsConfig]):
    """Generate synthetic tone-control pairs: concise friendly (chosen) vs verbose formal (rejected).

    Seeded; `noise` flips labels (the `label_flipped` column says which). Outputs data, sft, prompts.
    """

    name = "tone_pairs"
    kind = "global"  # a generator: no input rows to stream
    Params = TonePairsConfig
    version = 1
    inputs = ()
    outputs = ("data", "sft", "prompts")

    def output_schema(self, schema: pl.Schema, params: TonePairsConfig) -> pl.Schema:
        from tamis.curate.preferences.schema import tone_schema

        return tone_schema(params)

    def run(self, inputs: Inputs, params: TonePairsConfig, ctx: StepContext) -> StepOutput:
        from tamis.curate.preferences import tone_pairs, tone_report

        df = tone_pairs(params, seed=ctx.seed)
        return StepOutput(frames=pair_outputs(df), report=tone_report(df, params))
