"""Step `dedup`: exact duplicate removal (see tamis.curate.dedup.exact)."""

from __future__ import annotations

from typing import Any

import polars as pl

from tamis.curate.dedup.clusters import flag_schema
from tamis.curate.dedup.exact import (
    DedupConfig,
    DedupPlan,
    dedup_bucket,
    exact_dedup,
    examples_from_rows,
    key_hashes,
    plan_dedup,
    report_from_buckets,
)
from tamis.pipelines.steps.base import (
    MAIN_OUTPUT,
    REPORT_ROWS,
    BatchResult,
    Inputs,
    KeyedStep,
    StepContext,
    StepOutput,
)


def _with_html(
    report: dict[str, Any], clusters: pl.DataFrame | pl.LazyFrame, ctx: StepContext
) -> dict[str, Any]:
    from tamis.curate.dedup.html import write_dedup_html

    if isinstance(clusters, pl.LazyFrame):  # an engine's spilled table: the sizes are enough
        clusters = clusters.select("size").collect(engine="streaming")
    write_dedup_html(report, clusters, ctx.artifacts_dir / "dedup.html", "Exact duplicates")
    return {**report, "html": "dedup.html"}


class Dedup(KeyedStep[DedupConfig]):
    """Remove or flag rows that are identical on the chosen columns after normalisation.

    Keyed: the key is the 64-bit hash of the normalised key columns; a bucket's rows are grouped
    on their real values (a hash collision never merges different rows) and the kept row of a
    cluster is its lowest (keep: first) or highest (keep: last) source row, so the output does not
    depend on the buckets. In memory, `run` streams the input (hash of every row, then exact
    grouping of the rows whose hash repeats), so it works on data larger than memory. The
    `clusters` table lists every duplicate cluster (its id is its first row).
    """

    name = "dedup"
    Params = DedupConfig
    version = 1
    #: the engine spills `clusters` bucket by bucket and assembles it in `cluster_id` order
    row_tables = {"clusters": "cluster_id"}

    def run(self, inputs: Inputs, params: DedupConfig, ctx: StepContext) -> StepOutput:
        ctx.progress("hashing rows")
        out, report, clusters = exact_dedup(inputs["input"], params)
        return StepOutput(
            frames={MAIN_OUTPUT: out},
            report=_with_html(report, clusters, ctx),
            tables={"clusters": clusters},
        )

    def prepare(
        self, sources: dict[str, pl.LazyFrame], params: DedupConfig, ctx: StepContext
    ) -> DedupPlan:
        return plan_dedup(sources["input"].collect_schema(), params)

    def key(
        self, batch: pl.DataFrame, input_name: str, params: DedupConfig, plan: DedupPlan
    ) -> pl.Series:
        return key_hashes(batch, plan)

    def reduce(
        self,
        frames: dict[str, pl.DataFrame],
        params: DedupConfig,
        plan: DedupPlan,
        ctx: StepContext,
    ) -> BatchResult:
        out, stats, tables = dedup_bucket(frames["input"], params, plan)
        return BatchResult(frame=out, stats=dict(stats), tables=tables)

    def key_columns(
        self, schema: pl.Schema, params: DedupConfig, plan: DedupPlan
    ) -> list[str] | None:
        """Only the compared columns: a bucket's reduce keeps or flags rows, the flags computed
        from the clusters (an engine may shuffle these columns alone)."""
        return list(plan.cols)

    def report_rows(self, merged: BatchResult, params: DedupConfig, plan: DedupPlan) -> list[int]:
        """The first rows of the largest clusters, shown whole in the report's examples."""
        examples = merged.tables.get("examples")
        if examples is None:
            return []
        top = examples.sort(["size", "cluster_id"], descending=[True, False])
        return [int(r) for r in top["first_row"].head(params.max_examples)]

    def finish(
        self, merged: BatchResult, params: DedupConfig, plan: DedupPlan, ctx: StepContext
    ) -> dict[str, Any]:
        examples = merged.tables.pop("examples", None)
        rows = merged.tables.pop(REPORT_ROWS, None)
        if examples is not None and rows is not None:  # buckets saw the key columns only
            examples = examples_from_rows(examples, rows, params.max_examples)
        report, clusters = report_from_buckets(
            merged.stats, merged.tables.get("clusters"), examples, plan, params
        )
        merged.tables["clusters"] = clusters  # type: ignore[assignment]
        return _with_html(report, clusters, ctx)

    def output_schema(self, schema: pl.Schema, params: DedupConfig) -> pl.Schema:
        return flag_schema(schema, params.action, "duplicate")
