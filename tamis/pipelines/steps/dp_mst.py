"""Step `dp_mst`: MST marginal-based DP synthesis (zCDP accounting, privacy ledger)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field

from tamis.pipelines.steps.base import Step, StepContext, StepOutput, StepParams


class MarginalColumnMeta(StepParams):
    """Public facts about one column (never learned from the private data)."""

    type: Literal["continuous", "categorical"] | None = Field(
        default=None, description="column kind (default: numbers continuous, the rest categorical)"
    )
    bounds: tuple[float, float] | None = Field(
        default=None,
        description="public [low, high] of a continuous column (else learned with DP from"
        " domain_fraction, or refused)",
    )
    categories: list[Any] | None = Field(
        default=None, description="public category domain (required for categorical columns)"
    )


class DPMarginalParams(StepParams):
    epsilon: float = Field(default=1.0, description="target epsilon of the whole step (> 0)")
    delta: float | None = Field(
        default=None, description="target delta (< 1/n); default min(1e-5, 0.1/n)"
    )
    rows: int | None = Field(default=None, ge=1, description="rows to sample (default: input rows)")
    bins: int = Field(default=32, ge=2, description="equal-width public bins per numeric column")
    columns: dict[str, MarginalColumnMeta] = Field(
        default_factory=dict, description="public metadata per column: type, bounds, categories"
    )
    domain_fraction: float = Field(
        default=0.0,
        description="share of the budget spent learning missing numeric bounds (0: refuse them)",
    )
    estimator: Literal["auto", "numpy", "mbi", "tree"] = Field(
        default="auto",
        description="auto = numpy (graphical model, no JAX), mbi (Private-PGM, JAX), tree (MST only)",
    )
    iters: int = Field(default=1000, ge=1, description="mbi estimation iterations")


def run_marginal(
    kind: str, inputs: dict[str, Any], p: Any, ctx: StepContext, extra: dict[str, Any]
) -> StepOutput:
    from tamis.privacy.dp_marginal import MarginalConfig, MarginalSynth
    from tamis.privacy.dp_marginal.mst import MST

    df = inputs["input"].collect()
    cols = {c: m.model_dump(exclude_none=True) for c, m in p.columns.items()}
    cfg = MarginalConfig(
        epsilon=p.epsilon,
        delta=p.delta,
        bins=p.bins,
        columns=cols,
        domain_fraction=p.domain_fraction,
        estimator=p.estimator,
        iters=p.iters,
        **extra,
    )
    model: MarginalSynth
    if kind == "mst":
        model = MST(cfg)
    else:
        from tamis.privacy.dp_marginal.aim import AIM

        model = AIM(cfg)
    model.fit(df, progress=lambda msg, **kw: ctx.progress(msg, **kw))
    out = model.sample(p.rows or df.height, seed=ctx.seed)
    state = model.to_dict()
    ctx.artifacts_dir.mkdir(parents=True, exist_ok=True)
    (ctx.artifacts_dir / f"dp_{kind}.json").write_text(json.dumps(state))
    assert model.ledger is not None
    ledger = model.ledger.to_dict()
    report = {
        "rows_in": df.height,
        "rows_out": out.height,
        "epsilon_spent": ledger["total"]["epsilon"],
        "rho_spent": ledger["total"]["rho"],
        "delta": ledger["total"]["delta"],
        "target_epsilon": p.epsilon,
        "privacy_ledger": ledger,
        "selected": model.selected,
        "domain": {
            d["name"]: {k: d[k] for k in ("kind", "cells", "source", "bounds")}
            for d in state["domains"]
        },
        "training": model.stats,
        "model": f"dp_{kind}.json (public domain, noisy marginals, choices, ledger)",
    }
    return StepOutput(frames={"data": out}, report=report)


class DPMSTStep(Step):
    """MST (McKenna, Miklau & Sheldon 2021): noisy 1-way marginals, a spanning tree of pairs chosen
    with the exponential mechanism, noisy 2-way marginals on it; rows from a graphical model fitted
    to the noisy marginals (mbi) or drawn along the tree. zCDP accounting, privacy ledger."""

    name = "dp_mst"
    Params = DPMarginalParams
    version = 1
    #: the DP noise comes from the OS CSPRNG, fresh per build, never stored
    deterministic = False
    requires = ("numpy",)
    extra = "dp"

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        return run_marginal("mst", inputs, params, ctx, {})
