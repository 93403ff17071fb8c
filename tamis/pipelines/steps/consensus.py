"""Step `consensus`: a multi-annotator table -> one labelled row per item (tamis.curate.consensus)."""

from __future__ import annotations

import polars as pl

from tamis.curate.consensus import ConsensusConfig, output_schema
from tamis.pipelines.steps.base import Inputs, Step, StepContext, StepOutput


class Consensus(Step[ConsensusConfig]):
    """Turn a long (item, annotator, label) table into one row per item with agreement columns.

    Reports Cohen's kappa per pair, Fleiss' kappa, Krippendorff's alpha, annotator quality
    (CROWDLAB) and gold accuracy drift; low-agreement items can go to an adjudication list.
    Global: annotator quality is estimated over every item.
    """

    name = "consensus"
    Params = ConsensusConfig
    kind = "global"
    version = 2  # null labels dropped and counted (issue 12)

    def output_schema(self, schema: pl.Schema, params: ConsensusConfig) -> pl.Schema:
        return output_schema(schema, params)

    def run(self, inputs: Inputs, params: ConsensusConfig, ctx: StepContext) -> StepOutput:
        from tamis.curate.consensus import consensus
        from tamis.curate.label_html import write_consensus_html

        out, report = consensus(
            inputs["input"].collect(), params, seed=ctx.seed, progress=ctx.progress
        )
        tables = report.pop("tables")
        write_consensus_html(report, tables, ctx.artifacts_dir / "agreement.html")
        report["html"] = "agreement.html"
        if params.low_agreement == "adjudicate":
            tables["adjudication"].write_csv(ctx.artifacts_dir / "adjudication.csv")
            report["adjudication_file"] = "adjudication.csv"
        return StepOutput(frames={"data": out}, report=report, tables=tables)
