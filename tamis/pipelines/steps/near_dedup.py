"""Step `near_dedup`: near-duplicate removal, text (MinHash + LSH) or tabular (blocking)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from tamis.curate.dedup.clusters import flag_schema
from tamis.curate.dedup.near import NearDedupConfig
from tamis.pipelines.steps.base import Inputs, Step, StepContext, StepOutput


class NearDedup(Step[NearDedupConfig]):
    """Remove or flag near-duplicate rows: text by MinHash + LSH + exact Jaccard, tabular by blocking.

    Text mode verifies every LSH candidate by its true Jaccard and clusters by connected components;
    the report carries the Jaccard histogram of the checked pairs. Tables: `clusters`, `pairs`.
    Global in memory; under the bounded engine text mode runs out of core (`run_bounded`: signatures
    per batch, band buckets and candidates spilled, see `tamis.curate.dedup.near_bounded`) with the
    same output; under the Ray engine the same stages run as tasks (`engine.near_dedup_text`, see
    `tamis.pipelines.engines.ray_near`); tabular mode stays global (checked against the memory
    limit first).
    """

    name = "near_dedup"
    Params = NearDedupConfig
    version = 1

    def output_schema(self, schema: pl.Schema, params: NearDedupConfig) -> pl.Schema:
        return flag_schema(schema, params.action, "near_duplicate")

    def run(self, inputs: Inputs, params: NearDedupConfig, ctx: StepContext) -> StepOutput:
        from tamis.curate.dedup import near_dedup_tabular, near_dedup_text

        df = inputs["input"].collect()
        if params.column is not None:
            ctx.progress("MinHash + LSH")
            out, report, clusters, pairs = near_dedup_text(df, params, seed=ctx.seed)
        else:
            ctx.progress("blocking")
            out, report, clusters, pairs = near_dedup_tabular(df, params)
        return _output(out, report, clusters, pairs, ctx)

    def run_bounded(
        self, engine: Any, inputs: Inputs, params: NearDedupConfig, ctx: StepContext, out: Path
    ) -> tuple[list[Any], StepOutput]:
        """Text mode out of core (the input is streamed twice, never held); tabular mode global."""
        from tamis.curate.dedup.near_bounded import near_dedup_text_bounded
        from tamis.pipelines.engines.local import mean_row_bytes

        source: pl.LazyFrame = inputs["input"]
        if params.column is None:
            rows = int(source.select(pl.len()).collect().item())
            engine.check_global(self, int(rows * mean_row_bytes(source)), rows, ctx)
            output = self.run(inputs, params, ctx)
            frame = output.frames.pop("data")
            assert isinstance(frame, pl.DataFrame)
            return engine.part_writer(out).close_with(frame), output
        # an engine that distributes the stages (Ray) has its own runner of the same stages
        text_bounded = getattr(engine, "near_dedup_text", near_dedup_text_bounded)
        parts, report, clusters, pairs = text_bounded(
            engine, source, params, out=out, seed=ctx.seed
        )
        output = _output(None, report, clusters, pairs, ctx)
        return parts, output


def _output(
    out: pl.DataFrame | None,
    report: dict[str, Any],
    clusters: pl.DataFrame | pl.LazyFrame,
    pairs: pl.DataFrame | pl.LazyFrame,
    ctx: StepContext,
) -> StepOutput:
    """The step's output; `clusters` and `pairs` may be scans of an engine's files (Ray's
    components as tasks): the HTML page reads only what it shows, the store streams them."""
    from tamis.curate.dedup.html import write_dedup_html

    write_dedup_html(report, clusters, ctx.artifacts_dir / "near_dedup.html", "Near duplicates")
    report["html"] = "near_dedup.html"
    frames: dict[str, pl.DataFrame | pl.LazyFrame] = {} if out is None else {"data": out}
    tables = {"clusters": clusters, "pairs": pairs}  # scans are streamed into the store
    return StepOutput(frames=frames, report=report, tables=tables)  # type: ignore[arg-type]
