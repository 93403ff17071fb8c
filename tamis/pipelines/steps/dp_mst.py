"""Step `dp_mst`: MST marginal-based DP synthesis (zCDP accounting, privacy ledger)."""

from __future__ import annotations

import json
from typing import Any, Generic, TypeVar

import polars as pl

from tamis.pipelines.steps.base import Step, StepContext, StepOutput
from tamis.privacy.budget import budget_report
from tamis.privacy.dp_marginal.base import MarginalConfig, MarginalSynth


def run_marginal(model: MarginalSynth, inputs: dict[str, Any], ctx: StepContext) -> StepOutput:
    """Fit a marginal synthesizer on the input, sample, keep its state, report its ledger."""
    p = model.config
    kind = model.mechanism
    df = inputs["input"].collect()
    model.fit(df, progress=lambda msg, **kw: ctx.progress(msg, **kw))
    out = model.sample(p.rows or df.height, seed=ctx.seed)
    state = model.to_dict()
    ctx.artifacts_dir.mkdir(parents=True, exist_ok=True)
    (ctx.artifacts_dir / f"dp_{kind}.json").write_text(json.dumps(state))
    assert model.ledger is not None
    report = {
        **budget_report(df.height, out.height, model.ledger.to_dict(), p.epsilon),
        "selected": model.selected,
        "domain": {
            d["name"]: {k: d[k] for k in ("kind", "cells", "source", "bounds")}
            for d in state["domains"]
        },
        "training": model.stats,
        "model": f"dp_{kind}.json (public domain, noisy marginals, choices, ledger)",
    }
    return StepOutput(frames={"data": out}, report=report)


M = TypeVar("M", bound=MarginalConfig)


class MarginalStep(Step[M], Generic[M]):
    """A marginal-based DP synthesizer step: fit on the whole input, sample, report the ledger."""

    kind = "global"
    version = 1
    #: the DP noise and selections come from the OS CSPRNG, fresh per build, never stored
    deterministic = False
    requires = ("numpy",)
    extra = "dp"

    def output_schema(self, schema: pl.Schema, params: M) -> pl.Schema:
        """Synthetic rows have the input's columns and dtypes."""
        return schema

    def model(self, params: M) -> MarginalSynth:
        """The unfitted synthesizer for these params."""
        raise NotImplementedError

    def run(self, inputs: dict[str, Any], params: M, ctx: StepContext) -> StepOutput:
        return run_marginal(self.model(params), inputs, ctx)


class DPMSTStep(MarginalStep[MarginalConfig]):
    """MST (McKenna, Miklau & Sheldon 2021): noisy 1-way marginals, a spanning tree of pairs chosen
    with the exponential mechanism, noisy 2-way marginals on it; rows from a graphical model fitted
    to the noisy marginals (mbi) or drawn along the tree. zCDP accounting, privacy ledger."""

    name = "dp_mst"
    Params = MarginalConfig

    def model(self, params: MarginalConfig) -> MarginalSynth:
        from tamis.privacy.dp_marginal.mst import MST

        return MST(params)
