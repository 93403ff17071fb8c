"""Step `near_dedup`: near-duplicate removal, text (MinHash + LSH) or tabular (blocking)."""

from __future__ import annotations

import polars as pl

from tamis.curate.dedup.clusters import flag_schema
from tamis.curate.dedup.near import NearDedupConfig
from tamis.pipelines.steps.base import Inputs, Step, StepContext, StepOutput


class NearDedup(Step[NearDedupConfig]):
    """Remove or flag near-duplicate rows: text by MinHash + LSH + exact Jaccard, tabular by blocking.

    Text mode verifies every LSH candidate by its true Jaccard and clusters by connected components;
    the report carries the Jaccard histogram of the checked pairs. Tables: `clusters`, `pairs`.
    Global for now; the capability is written as stages an engine can stream (see
    `tamis.curate.dedup.near`).
    """

    name = "near_dedup"
    Params = NearDedupConfig
    version = 1

    def output_schema(self, schema: pl.Schema, params: NearDedupConfig) -> pl.Schema:
        return flag_schema(schema, params.action, "near_duplicate")

    def run(self, inputs: Inputs, params: NearDedupConfig, ctx: StepContext) -> StepOutput:
        from tamis.curate.dedup import near_dedup_tabular, near_dedup_text
        from tamis.curate.dedup.html import write_dedup_html

        df = inputs["input"].collect()
        if params.column is not None:
            ctx.progress("MinHash + LSH")
            out, report, clusters, pairs = near_dedup_text(df, params, seed=ctx.seed)
        else:
            ctx.progress("blocking")
            out, report, clusters, pairs = near_dedup_tabular(df, params)
        write_dedup_html(report, clusters, ctx.artifacts_dir / "near_dedup.html", "Near duplicates")
        report["html"] = "near_dedup.html"
        return StepOutput(
            frames={"data": out}, report=report, tables={"clusters": clusters, "pairs": pairs}
        )
