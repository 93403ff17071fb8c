"""Step `preference_curate`: clean preference pairs and diagnose (optionally fix) length bias.

Drops identical and empty pairs and exact duplicate pairs, optionally near-duplicate prompts and
prompts that leak into eval sets given as `against:`; reports length bias before and after;
`rebalance_length` downsamples so length stops predicting the label. Outputs data, sft, prompts,
dropped. Params: `tamis.curate.preferences.PreferenceCurateConfig`.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from tamis.curate.preferences.curate import PreferenceCurateConfig
from tamis.pipelines.steps.base import Inputs, Step, StepContext, StepOutput
from tamis.pipelines.steps.preference_pairs import pair_outputs


class PreferenceCurate(Step[PreferenceCurateConfig]):
    """Drop identical, empty, duplicate and eval-leaked preference pairs; report and fix length bias.

    Optional input `against`: eval sets (one or a list) whose prompts must not appear in the output.
    """

    name = "preference_curate"
    kind = "global"  # duplicates, near-duplicate prompts and length rebalancing span all rows
    Params = PreferenceCurateConfig
    version = 1
    outputs = ("data", "sft", "prompts", "dropped")
    optional_inputs = ("against",)
    list_inputs = ("against",)

    def output_schema(self, schema: pl.Schema, params: PreferenceCurateConfig) -> pl.Schema:
        return schema  # pairs are only dropped

    def run(self, inputs: Inputs, params: PreferenceCurateConfig, ctx: StepContext) -> StepOutput:
        from tamis.curate.preferences import curate_pairs
        from tamis.curate.preferences.html import write_html

        against = inputs.get("against")
        frames_in = [] if against is None else against if isinstance(against, list) else [against]
        evals = {f"against_{i}": f.collect() for i, f in enumerate(frames_in)}
        res = curate_pairs(inputs["input"].collect(), params, against=evals or None, seed=ctx.seed)
        frames: dict[str, Any] = {**pair_outputs(res.pairs), "dropped": res.dropped}
        write_html(res.report, ctx.artifacts_dir / "preferences.html", res.pairs)
        return StepOutput(frames=frames, report=res.report)
