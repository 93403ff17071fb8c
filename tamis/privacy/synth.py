"""Synthesis with SDV 2.0 single-table synthesizers: CTGAN, TVAE and Gaussian copula.

    from tamis.privacy.synth import NeuralSynthConfig, fit_synthesizer, sample_synthetic
    model, info = fit_synthesizer(df, "ctgan", NeuralSynthConfig(epochs=50), seed=0)
    synthetic = sample_synthetic(model, rows=len(df), seed=0, info=info)

Input handling (documented in docs/privacy.md):
- fewer than `MIN_ROWS` (50) rows: refused (a generative model of so few rows copies them);
- all-null columns: refused, naming the column (drop it first);
- constant columns: not modelled; they are put back with their single value after sampling;
- list/struct/binary/object columns: refused, naming the column (flatten or drop them);
- Polars categoricals/enums become strings (SDV refuses pandas `category` dtype).

Model files: SDV saves synthesizers with cloudpickle. Loading a pickle runs code, so
`load_model` only loads a file inside a tamis store's `versions/<id>/artifacts/` directory (a file
the store itself wrote); never point it at a file someone sent you.
"""

from __future__ import annotations

import contextlib
import random
import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd
import polars as pl
from pydantic import Field

from tamis.config import Config
from tamis.errors import DataError
from tamis.privacy.model_files import MODEL_FILE, load_model, save_model

MIN_ROWS = 50
Kind = Literal["ctgan", "tvae", "gaussian_copula"]
SDTYPES = (
    "numerical",
    "categorical",
    "boolean",
    "datetime",
    "id",
    "email",
    "phone_number",
    "first_name",
    "last_name",
    "name",
    "address",
    "ssn",
    "credit_card_number",
)
TABLE = "t"


class SynthConfig(Config):
    """How to fit and sample an SDV synthesizer: the `gaussian_copula` step's params."""

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


class NeuralSynthConfig(SynthConfig):
    """A neural SDV synthesizer's settings (the `ctgan` and `tvae` steps' params)."""

    epochs: int = Field(default=100, ge=1, description="training epochs")
    batch_size: int = Field(
        default=500, ge=10, description="minibatch size (a multiple of 10 for ctgan)"
    )


_BAD_DTYPES = (pl.List, pl.Struct, pl.Array, pl.Binary, pl.Object)


def prepare_frame(frame: pl.DataFrame | pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Validate a training frame; return the pandas frame SDV will see and the constant columns."""
    df = frame if isinstance(frame, pl.DataFrame) else pl.from_pandas(frame)
    if df.height < MIN_ROWS:
        raise DataError(
            f"only {df.height} rows: a synthesizer needs at least {MIN_ROWS}",
            fix="synthesize from a larger dataset (a model of so few rows memorises them)",
        )
    if df.width == 0:
        raise DataError("the input has no columns")
    casts = []
    for name, dtype in df.schema.items():
        if isinstance(dtype, _BAD_DTYPES) or dtype in _BAD_DTYPES:
            raise DataError(
                f"unsupported column type {dtype} for synthesis",
                column=name,
                fix="flatten, cast to string, or drop the column before this step",
            )
        if isinstance(dtype, (pl.Categorical, pl.Enum)):
            casts.append(pl.col(name).cast(pl.Utf8))
        elif isinstance(dtype, pl.Decimal):
            casts.append(pl.col(name).cast(pl.Float64))
        elif dtype == pl.Null or df[name].null_count() == df.height:
            raise DataError(
                "column is entirely null: nothing to learn",
                column=name,
                fix="drop the column before synthesis",
            )
    if casts:
        df = df.with_columns(casts)
    constants: dict[str, Any] = {}
    for name in df.columns:
        if df[name].n_unique() == 1:
            constants[name] = df[name][0]
    kept = [c for c in df.columns if c not in constants]
    if not kept:
        raise DataError(
            "every column is constant: nothing to learn",
            fix="synthesize a dataset with at least one varying column",
        )
    return df.select(kept).to_pandas(), {"constants": constants, "columns": df.columns}


def detect_metadata(df: pd.DataFrame, cfg: SynthConfig) -> Any:
    """SDV metadata detected from the frame, then overridden by the YAML (sdtypes, pii, key)."""
    from sdv.metadata import Metadata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        meta = Metadata.detect_from_dataframes({TABLE: df})
    detected_pk = meta.tables[TABLE].primary_key
    if detected_pk and detected_pk != cfg.primary_key:
        meta.remove_primary_key(TABLE)
    for col in [*cfg.sdtypes, *cfg.pii, *([cfg.primary_key] if cfg.primary_key else [])]:
        if col not in df.columns:
            raise DataError(
                "column named in params is not in the data (or is constant)",
                column=col,
                fix=f"columns: {', '.join(map(str, df.columns))}",
            )
    for col, sdtype in cfg.sdtypes.items():
        if sdtype not in SDTYPES:
            raise DataError(
                f"unknown sdtype '{sdtype}'",
                column=col,
                field="sdtypes",
                fix=f"valid sdtypes: {', '.join(SDTYPES)}",
            )
        kwargs: dict[str, Any] = {"sdtype": sdtype}
        if sdtype not in ("numerical", "categorical", "boolean", "datetime", "id"):
            kwargs["pii"] = True
        meta.update_column(col, table_name=TABLE, **kwargs)
    for col in cfg.pii:
        current = meta.tables[TABLE].columns[col]["sdtype"]
        if current in ("numerical", "categorical", "boolean", "datetime"):
            # a PII column is never learned: SDV generates fresh unique ids for it
            meta.update_column(col, table_name=TABLE, sdtype="id")
        else:
            meta.update_column(col, table_name=TABLE, sdtype=current, pii=True)
    if cfg.primary_key:
        if meta.tables[TABLE].columns[cfg.primary_key]["sdtype"] != "id":
            meta.update_column(cfg.primary_key, table_name=TABLE, sdtype="id")
        if meta.tables[TABLE].primary_key != cfg.primary_key:
            meta.set_primary_key(cfg.primary_key, table_name=TABLE)
    return meta


def _synth_class(kind: str) -> Any:
    if kind == "ctgan":
        from sdv.single_table import CTGANSynthesizer

        return CTGANSynthesizer
    if kind == "tvae":
        from sdv.single_table import TVAESynthesizer

        return TVAESynthesizer
    if kind == "gaussian_copula":
        from sdv.single_table import GaussianCopulaSynthesizer

        return GaussianCopulaSynthesizer
    raise DataError(f"unknown synthesizer '{kind}'", fix="use ctgan, tvae or gaussian_copula")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # gaussian_copula works without torch
        pass


def _joblib_in_threads() -> Any:
    """CTGAN's data transformer runs `joblib.Parallel(n_jobs=-1)` on frames of 500+ rows. With
    joblib's default backend that starts a pool of worker processes which idle for 300 s, and a
    Python process joins its children at exit: `tamis build` (or a sweep worker) would hang for up
    to five minutes after its work was done. Threads do the same column transforms, leave
    nothing behind, and stay inside the process's CPU budget."""
    from joblib import parallel_config

    return parallel_config(backend="threading")


def fit_synthesizer(
    frame: pl.DataFrame | pd.DataFrame,
    synthesizer: Kind,
    cfg: SynthConfig | None = None,
    seed: int = 0,
) -> tuple[Any, dict[str, Any]]:
    """Fit an SDV synthesizer (`ctgan`, `tvae` or `gaussian_copula`) with `cfg` (epochs and
    batch size from a `NeuralSynthConfig`); returns it and an info dict (metadata, constants,
    n_train)."""
    cfg = cfg or SynthConfig()
    df, info = prepare_frame(frame)
    meta = detect_metadata(df, cfg)
    cls = _synth_class(synthesizer)
    kwargs: dict[str, Any] = dict(cfg.options)
    if synthesizer in ("ctgan", "tvae"):
        if not isinstance(cfg, NeuralSynthConfig):
            cfg = NeuralSynthConfig(**cfg.model_dump())
        if cfg.batch_size < 10 or (synthesizer == "ctgan" and cfg.batch_size % 10):
            raise DataError(
                f"batch_size {cfg.batch_size} is invalid",
                field="batch_size",
                fix="use a multiple of 10 (CTGAN packs 10 rows per discriminator input)",
            )
        kwargs.update(epochs=cfg.epochs, batch_size=cfg.batch_size, enable_gpu=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = cls(meta, **kwargs)
        except TypeError as exc:
            raise DataError(f"bad synthesizer option: {exc}", field="options") from None
        seed_everything(seed)
        with _joblib_in_threads():
            model.fit({TABLE: df})
    info.update(
        kind=synthesizer,
        n_train=int(len(df)),
        metadata=meta.to_dict(),
    )
    return model, info


def sample_synthetic(model: Any, rows: int, seed: int, info: dict[str, Any]) -> pl.DataFrame:
    """Sample `rows` rows (seeded), putting constant columns back in the original order."""
    if rows < 1:
        raise DataError("rows must be >= 1", field="rows")
    seed_everything(seed)
    if hasattr(model, "_set_random_state"):
        with contextlib.suppress(AttributeError, TypeError):
            model._set_random_state(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _joblib_in_threads():
            out = model.sample(rows)
    df = out[TABLE] if isinstance(out, dict) else out
    result = pl.from_pandas(df.reset_index(drop=True))
    for name, value in info.get("constants", {}).items():
        result = result.with_columns(pl.lit(value).alias(name))
    order = [c for c in info.get("columns", result.columns) if c in result.columns]
    return result.select(order)


__all__ = [
    "MODEL_FILE",
    "NeuralSynthConfig",
    "SynthConfig",
    "detect_metadata",
    "fit_synthesizer",
    "load_model",
    "prepare_frame",
    "sample_synthetic",
    "save_model",
]
