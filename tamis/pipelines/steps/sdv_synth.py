"""Steps `ctgan`, `tvae`, `gaussian_copula`: SDV 2.0 synthesizers; output = synthetic rows.

    synth:
      use: ctgan
      input: clean
      params: {epochs: 100, rows: 30000, sdtypes: {zip: categorical}, pii: [email],
               primary_key: id}

The fitted model is kept beside the version as `artifacts/synthesizer.pkl` (SDV saves with
cloudpickle). A pickle runs code when loaded: load it only with
`tamis.privacy.synth.load_model(path, store_root)`, which accepts files inside a store's
`versions/<id>/artifacts/` and nothing else.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from pydantic import Field

from tamis.pipelines.steps.base import Step, StepContext, StepOutput, StepParams


class CopulaParams(StepParams):
    rows: int | None = Field(default=None, ge=1, description="rows to sample (default: input rows)")
    sdtypes: dict[str, str] = Field(
        default_factory=dict,
        description="column -> SDV sdtype overriding detection (numerical, categorical, datetime,"
        " id, email, phone_number, ...)",
    )
    pii: list[str] = Field(
        default_factory=list,
        description="columns holding personal data: replaced by fake values, never learned",
    )
    primary_key: str | None = Field(
        default=None, description="primary-key column (new unique ids are generated)"
    )
    quality: bool = Field(
        default=True, description="add SDMetrics' quality score (<= 10k rows each) to the report"
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="extra keyword arguments for the SDV synthesizer"
    )


class NeuralParams(CopulaParams):
    epochs: int = Field(default=100, ge=1, description="training epochs")
    batch_size: int = Field(
        default=500, ge=10, description="minibatch size (a multiple of 10 for ctgan)"
    )


class _SDVStep(Step):
    kind: ClassVar[str] = ""
    requires = ("sdv", "sdmetrics")
    extra = "privacy"

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        from tamis.privacy.synth import (
            SynthConfig,
            fit_synthesizer,
            sample_synthetic,
            save_model,
        )

        p: CopulaParams = params
        df = inputs["input"].collect()
        cfg = SynthConfig(
            kind=self.kind,  # type: ignore[arg-type]
            epochs=getattr(p, "epochs", 1),
            batch_size=getattr(p, "batch_size", 500),
            sdtypes=dict(p.sdtypes),
            pii=list(p.pii),
            primary_key=p.primary_key,
            seed=ctx.seed,
            options=dict(p.options),
        )
        ctx.progress(f"fitting {self.kind} on {df.height:,} rows")
        t0 = time.perf_counter()
        model, info = fit_synthesizer(df, cfg)
        fit_seconds = time.perf_counter() - t0
        rows = p.rows or df.height
        ctx.progress(f"sampling {rows:,} rows")
        out = sample_synthetic(model, rows, ctx.seed, info)
        path = save_model(model, ctx.artifacts_dir)
        columns = info["metadata"]["tables"]["t"]["columns"]
        report: dict[str, Any] = {
            "synthesizer": self.kind,
            "rows_in": df.height,
            "rows_out": out.height,
            "fit_seconds": round(fit_seconds, 3),
            "sdtypes": {c: v.get("sdtype") for c, v in columns.items()},
            "pii_columns": [c for c, v in columns.items() if v.get("pii")],
            "primary_key": info["metadata"]["tables"]["t"].get("primary_key"),
            "constant_columns": {k: str(v) for k, v in info["constants"].items()},
            "model_file": f"artifacts/{path.name}",
            "model_note": "cloudpickle file: load only with tamis.privacy.synth.load_model",
        }
        if hasattr(p, "epochs"):
            report.update(epochs=cfg.epochs, batch_size=cfg.batch_size)
        if p.quality:
            from tamis.privacy.quality import quality_report

            ctx.progress("quality report")
            real = df.sample(10000, seed=ctx.seed) if df.height > 10000 else df
            syn = out.sample(10000, seed=ctx.seed) if out.height > 10000 else out
            q = quality_report(real, syn)
            report["quality"] = {k: q[k] for k in ("score", "column_shapes", "column_pair_trends")}
            report["quality"]["columns"] = q["columns"]
        return StepOutput(frames={"data": out}, report=report)


class CTGANStep(_SDVStep):
    """CTGAN (SDV 2.0): a conditional GAN for mixed-type tables; output = synthetic rows."""

    name = "ctgan"
    kind = "ctgan"
    Params = NeuralParams


class TVAEStep(_SDVStep):
    """TVAE (SDV 2.0): a variational autoencoder for tables; output = synthetic rows."""

    name = "tvae"
    kind = "tvae"
    Params = NeuralParams


class GaussianCopulaStep(_SDVStep):
    """Gaussian copula (SDV 2.0): fast statistical synthesizer; output = synthetic rows."""

    name = "gaussian_copula"
    kind = "gaussian_copula"
    Params = CopulaParams
    requires = ("sdv", "sdmetrics")
