"""Step `tone_pairs`: a synthetic tone-control preference set (a generator: no inputs).

Chosen = a concise, friendly reply; rejected = a verbose, formal one; same facts in both. Every row
has `synthetic = true` and the report says `synthetic: true`. See tamis/curate/preferences/tone.py.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tamis.pipelines.steps.base import Step, StepContext, StepOutput, StepParams


class TonePairsParams(StepParams):
    n: int = Field(1000, ge=1, description="number of pairs")
    noise: float = Field(
        0.0, ge=0.0, lt=1.0, description="share of pairs whose chosen/rejected are swapped"
    )
    length_matched: bool = Field(
        False,
        description="pad replies with same-tone filler so length no longer predicts the label",
    )
    format: Literal["standard", "conversational"] = Field(
        "standard", description="text columns (HH style) or {role, content} message lists"
    )


class TonePairs(Step):
    """Generate synthetic tone-control pairs: concise friendly (chosen) vs verbose formal (rejected).

    Seeded; `noise` flips labels (the `label_flipped` column says which). Outputs data, sft, prompts.
    """

    name = "tone_pairs"
    Params = TonePairsParams
    version = 1
    inputs = ()
    outputs = ("data", "sft", "prompts")

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        from tamis.curate.preferences import length_bias, to_prompts, to_sft, tone_pairs

        p: TonePairsParams = params
        df = tone_pairs(p.n, p.noise, ctx.seed, length_matched=p.length_matched, format=p.format)
        report = {
            "synthetic": True,
            "rows_out": df.height,
            "pairs_out": df.height,
            "label_flipped": int(df.get_column("label_flipped").sum()),
            "noise": p.noise,
            "length_matched": p.length_matched,
            "topics": dict(sorted(df.get_column("topic").value_counts().iter_rows())),
            "length_bias": length_bias(df),
            "note": "synthetic data generated from templates; not real human feedback",
        }
        return StepOutput(
            frames={"data": df, "sft": to_sft(df), "prompts": to_prompts(df)}, report=report
        )
