"""`split`: random, stratified or group-wise splits, seeded; one output version per part."""

from __future__ import annotations

import numpy as np
import polars as pl
from pydantic import Field, field_validator

from tamis.errors import StepError
from tamis.pipelines.steps.base import Inputs, Step, StepContext, StepOutput, StepParams


class SplitParams(StepParams):
    fractions: dict[str, float] = Field(
        default_factory=lambda: {"train": 0.8, "test": 0.2},
        description="part name -> fraction (must sum to 1); each part is an output `step.<part>`",
    )
    stratify: str | None = Field(None, description="keep this column's class shares in every part")
    group: str | None = Field(
        None,
        description="rows sharing this column's value land in the same part (no group leakage)",
    )

    @field_validator("fractions")
    @classmethod
    def _sum_to_one(cls, value: dict[str, float]) -> dict[str, float]:
        if len(value) < 2:
            raise ValueError("give at least two parts")
        if any(f <= 0 for f in value.values()):
            raise ValueError("fractions must be positive")
        if abs(sum(value.values()) - 1.0) > 1e-6:
            raise ValueError(f"fractions sum to {sum(value.values())}, not 1")
        return value


def _assign(n: int, fractions: list[float], rng: np.random.Generator) -> np.ndarray:
    """Part index for n items in a random order, sizes by largest remainder (exact totals)."""
    raw = np.array(fractions) * n
    sizes = np.floor(raw).astype(int)
    sizes[np.argsort(-(raw - sizes))[: n - sizes.sum()]] += 1
    parts = np.repeat(np.arange(len(fractions)), sizes)
    return parts[rng.permutation(n)]


class Split(Step[SplitParams]):
    """Split rows into named parts: random, stratified by a label, or by a group column.

    Global: every part's size follows from the whole input. Each part has the input's schema.
    """

    name = "split"
    Params = SplitParams
    kind = "global"
    outputs = ()

    def output_names(self, params: SplitParams) -> tuple[str, ...]:
        return tuple(params.fractions)

    def output_schema(self, schema: pl.Schema, params: SplitParams) -> pl.Schema:
        return schema

    def run(self, inputs: Inputs, params: SplitParams, ctx: StepContext) -> StepOutput:
        p = params
        df: pl.DataFrame = inputs["input"].collect()
        if df.height == 0:
            raise StepError("the input is empty: nothing to split")
        for col in (p.stratify, p.group):
            if col is not None and col not in df.columns:
                raise StepError(
                    f"no column '{col}'", column=col, fix=f"columns: {', '.join(df.columns)}"
                )
            if col is not None and (df.schema[col].is_nested() or df.schema[col] == pl.Object):
                raise StepError(
                    f"column '{col}' holds {df.schema[col]} values; `stratify` and `group` need "
                    "plain values (text, numbers, dates)",
                    column=col,
                    field="params.stratify" if col == p.stratify else "params.group",
                    fix="name a column of plain values, or derive one with `filter: {query: ...}`",
                )
        if p.stratify and p.group:
            raise StepError("give `stratify` or `group`, not both", field="params")
        names = list(p.fractions)
        fracs = list(p.fractions.values())
        rng = np.random.default_rng(ctx.seed)
        part = np.empty(df.height, dtype=np.int64)
        if p.group:
            groups = df.get_column(p.group).cast(pl.String).fill_null("<null>")
            uniq, inverse = np.unique(groups.to_numpy(), return_inverse=True)
            part = _assign(len(uniq), fracs, rng)[inverse]
        elif p.stratify:
            labels = df.get_column(p.stratify).cast(pl.String).fill_null("<null>").to_numpy()
            for value in np.unique(labels):
                idx = np.flatnonzero(labels == value)
                part[idx] = _assign(len(idx), fracs, rng)
        else:
            part = _assign(df.height, fracs, rng)
        frames: dict[str, pl.DataFrame | pl.LazyFrame] = {}
        sizes = {}
        for i, name in enumerate(names):
            chosen = df.filter(pl.Series(part == i))
            frames[name] = chosen
            sizes[name] = chosen.height
        report = {
            "rows_in": df.height,
            "rows_out": sizes,
            "method": "group" if p.group else "stratified" if p.stratify else "random",
        }
        return StepOutput(frames=frames, report=report)
