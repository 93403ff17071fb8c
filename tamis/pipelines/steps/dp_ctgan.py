"""Step `dp_ctgan`: differentially private CTGAN (Opacus DP-SGD) with a privacy ledger."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tamis.pipelines.steps.base import Step, StepContext, StepOutput, StepParams


class ColumnMeta(StepParams):
    """Public facts about one column (never learned from the private data)."""

    type: Literal["continuous", "categorical"] | None = Field(
        default=None, description="column kind (default: numbers continuous, the rest categorical)"
    )
    bounds: tuple[float, float] | None = Field(
        default=None, description="public [low, high] of a continuous column (else learned with DP)"
    )
    categories: list[Any] | None = Field(
        default=None, description="public category domain (else learned with DP, rare ones dropped)"
    )
    nullable: bool | None = Field(default=None, description="whether a continuous column has nulls")


class DPCTGANParams(StepParams):
    epsilon: float = Field(default=3.0, description="target epsilon of the whole step (> 0)")
    delta: float | None = Field(
        default=None, description="target delta (< 1/n); default min(1e-5, 0.1/n)"
    )
    rows: int | None = Field(default=None, ge=1, description="rows to sample (default: input rows)")
    epochs: int = Field(default=20, ge=1, description="discriminator passes over the data")
    batch_size: int = Field(default=2000, ge=1, description="expected real rows per DP-SGD step")
    fake_batch_size: int | None = Field(
        default=None, ge=1, description="fixed fake rows per step (default: batch_size)"
    )
    max_grad_norm: float = Field(default=1.0, gt=0, description="per-sample clipping norm")
    noise_multiplier: float | None = Field(
        default=None, description="DP-SGD noise (default: the smallest fitting the target)"
    )
    accountant: Literal["prv", "rdp"] = Field(default="prv", description="privacy accountant")
    grad_sample_mode: Literal["ghost", "hooks"] = Field(
        default="ghost", description="Opacus per-sample clipping implementation"
    )
    preprocess_fraction: float = Field(
        default=0.1, description="share of epsilon for DP bounds, domains, modes, frequencies"
    )
    conditional: Literal["noisy", "uniform", "none"] = Field(
        default="noisy", description="conditional-vector frequencies: noisy (charged) or uniform"
    )
    n_modes: int = Field(default=10, ge=1, le=64, description="modes per continuous column")
    columns: dict[str, ColumnMeta] = Field(
        default_factory=dict, description="public metadata per column: type, bounds, categories"
    )
    generator_lr: float = Field(default=1e-3, gt=0, description="generator learning rate")
    discriminator_lr: float = Field(default=2e-3, gt=0, description="discriminator learning rate")
    generator_dim: list[int] = Field(default=[256, 256], description="generator layer widths")
    discriminator_dim: list[int] = Field(
        default=[256, 256], description="discriminator layer widths"
    )
    discriminator_norm: Literal["none", "layer", "batch"] = Field(
        default="none", description="none or layer (batch is refused: it mixes rows)"
    )
    pac: int = Field(default=1, description="must be 1 (pac > 1 breaks record-level DP)")
    gradient_penalty: float = Field(default=0.0, description="must be 0 (not clipped per sample)")
    threads: int | None = Field(default=None, ge=1, description="torch threads")


class DPCTGANStep(Step):
    """Differentially private CTGAN: (epsilon, delta)-DP synthetic rows, with a privacy ledger.

    Preprocessing statistics are public metadata or DP mechanisms charged to the budget; the
    discriminator trains with Opacus DP-SGD; the report's `privacy_ledger` lists every mechanism
    and the composed total, which never exceeds the target (else the step refuses to run).
    """

    name = "dp_ctgan"
    Params = DPCTGANParams
    version = 1
    #: the DP noise and batch sampling come from the OS CSPRNG, fresh per build, never stored:
    #: two builds with the same inputs, params and seed give different rows
    deterministic = False
    requires = ("torch", "opacus")
    extra = "privacy"

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        from tamis.privacy.dp.ctgan import DPCTGAN, DPCTGANConfig

        p: DPCTGANParams = params
        df = inputs["input"].collect()
        meta = {"columns": {c: m.model_dump(exclude_none=True) for c, m in p.columns.items()}}
        fields = p.model_dump(exclude={"rows", "columns"})
        cfg = DPCTGANConfig(**fields, metadata=meta, seed=ctx.seed)
        model = DPCTGAN(cfg)
        model.fit(df, progress=lambda msg, **kw: ctx.progress(msg, **kw))
        out = model.sample(p.rows or df.height, seed=ctx.seed)
        model.save(ctx.artifacts_dir / "dp_ctgan")
        assert model.ledger is not None
        ledger = model.ledger.to_dict()
        report = {
            "rows_in": df.height,
            "rows_out": out.height,
            "epsilon_spent": ledger["total"]["epsilon"],
            "delta": ledger["total"]["delta"],
            "target_epsilon": p.epsilon,
            "privacy_ledger": ledger,
            "training": model.stats,
            "model": "dp_ctgan/ (generator.pt is a tensor-only state dict; dp_ctgan.json)",
        }
        return StepOutput(frames={"data": out}, report=report)
