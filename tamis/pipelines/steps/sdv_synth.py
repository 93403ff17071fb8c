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
from typing import Any, ClassVar, Generic, TypeVar

import polars as pl

from tamis.pipelines.steps.base import Step, StepContext, StepOutput
from tamis.privacy.synth import Kind, NeuralSynthConfig, SynthConfig

C = TypeVar("C", bound=SynthConfig)


class _SDVStep(Step[C], Generic[C]):
    #: the SDV synthesizer this step type fits
    synthesizer: ClassVar[Kind]
    kind = "global"
    requires = ("sdv", "sdmetrics")
    extra = "privacy"

    def output_schema(self, schema: pl.Schema, params: C) -> pl.Schema:
        """Synthetic rows have the input's columns and dtypes."""
        return schema

    def run(self, inputs: dict[str, Any], params: C, ctx: StepContext) -> StepOutput:
        from tamis.privacy.synth import fit_synthesizer, sample_synthetic, save_model

        p = params
        df = inputs["input"].collect()
        ctx.progress(f"fitting {self.synthesizer} on {df.height:,} rows")
        t0 = time.perf_counter()
        model, info = fit_synthesizer(df, self.synthesizer, p, seed=ctx.seed)
        fit_seconds = time.perf_counter() - t0
        rows = p.rows or df.height
        ctx.progress(f"sampling {rows:,} rows")
        out = sample_synthetic(model, rows, ctx.seed, info)
        path = save_model(model, ctx.artifacts_dir)
        columns = info["metadata"]["tables"]["t"]["columns"]
        report: dict[str, Any] = {
            "synthesizer": self.synthesizer,
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
        if isinstance(p, NeuralSynthConfig):
            report.update(epochs=p.epochs, batch_size=p.batch_size)
        if p.quality:
            from tamis.privacy.quality import quality_report

            ctx.progress("quality report")
            real = df.sample(10000, seed=ctx.seed) if df.height > 10000 else df
            syn = out.sample(10000, seed=ctx.seed) if out.height > 10000 else out
            q = quality_report(real, syn)
            report["quality"] = {k: q[k] for k in ("score", "column_shapes", "column_pair_trends")}
            report["quality"]["columns"] = q["columns"]
        return StepOutput(frames={"data": out}, report=report)


class CTGANStep(_SDVStep[NeuralSynthConfig]):
    """CTGAN (SDV 2.0): a conditional GAN for mixed-type tables; output = synthetic rows."""

    name = "ctgan"
    synthesizer = "ctgan"
    Params = NeuralSynthConfig


class TVAEStep(_SDVStep[NeuralSynthConfig]):
    """TVAE (SDV 2.0): a variational autoencoder for tables; output = synthetic rows."""

    name = "tvae"
    synthesizer = "tvae"
    Params = NeuralSynthConfig


class GaussianCopulaStep(_SDVStep[SynthConfig]):
    """Gaussian copula (SDV 2.0): fast statistical synthesizer; output = synthetic rows."""

    name = "gaussian_copula"
    synthesizer = "gaussian_copula"
    Params = SynthConfig
    requires = ("sdv", "sdmetrics")
