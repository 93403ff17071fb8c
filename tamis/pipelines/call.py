"""Calling one step: its warnings shown once, its errors naming the user's step, its outputs
checked; `run_step` runs a step type on in-memory frames without a store (tests, notebooks).

In a build the step runs through the bounded engine (`EngineRun`): its main output comes back
as Parquet parts the engine wrote (`EngineOutput.parts`), its other outputs as frames."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tamis.config import load_config
from tamis.errors import StepError, TamisError
from tamis.pipelines.engines import Engine
from tamis.pipelines.engines.local import mean_row_bytes
from tamis.pipelines.engines.parts import PartInfo
from tamis.pipelines.registry import get_step_type
from tamis.pipelines.steps.base import MAIN_OUTPUT, Step, StepContext, StepOutput, StepParams
from tamis.pipelines.store import Store, is_no_space


@dataclass
class EngineRun:
    """How a build runs a step: the engine, the directory its main output's parts go to, and
    the estimated size and rows of its inputs (checked before a global step starts)."""

    engine: Engine
    out: Path
    estimated_bytes: int | None = None
    rows: int | None = None


@dataclass
class EngineOutput(StepOutput):
    """A step's output from the engine: the main output as `parts` in `out`, the rest frames."""

    parts: list[PartInfo] = field(default_factory=list)
    out: Path | None = None


def _run(
    step: Step,
    inputs: dict[str, Any],
    params: StepParams,
    ctx: StepContext,
    engine: EngineRun | None,
) -> StepOutput:
    if engine is None:
        return step.run(inputs, params, ctx)
    parts, output = engine.engine.run_step(
        step,
        inputs,
        params,
        ctx,
        engine.out,
        estimated_bytes=engine.estimated_bytes,
        rows=engine.rows,
    )
    frames = dict(output.frames)
    if parts:
        frames.pop(MAIN_OUTPUT, None)  # written as parts: the frame is not kept
    return EngineOutput(
        frames=frames, report=output.report, tables=output.tables, parts=parts, out=engine.out
    )


def call_step(
    step: Step,
    inputs: dict[str, Any],
    params: StepParams,
    ctx: StepContext,
    *,
    in_build: bool = False,
    engine: EngineRun | None = None,
) -> StepOutput:
    """Run a step; in a build, a Python warning that the step also put in `report["warnings"]` is
    not shown again (the build prints the report's warnings once, as `warning: STEP: ...`).
    With `engine` the step runs through the bounded engine (see `EngineRun`)."""
    caught: list[warnings.WarningMessage] = []
    reported: list[str] = []
    try:
        with warnings.catch_warnings(record=in_build) as record:
            if in_build:
                warnings.simplefilter("always")
                caught = record or []
            output = _run(step, inputs, params, ctx, engine)
        reported = [str(w) for w in output.report.get("warnings") or []]
    except TamisError as exc:
        # capabilities name their step type by default (`step="label_issues"`): the user's step
        # name is the one the pipeline knows
        if exc.step is None or (exc.step == step.name and exc.step != ctx.step):
            exc.step = ctx.step
            exc.args = (exc.render(),)
        raise
    finally:
        for w in caught:
            if not any(str(w.message) in r or r in str(w.message) for r in reported):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    given = set(output.frames) | ({MAIN_OUTPUT} if getattr(output, "parts", None) else set())
    missing = [o for o in step.output_names(params) if o not in given]
    if missing:
        raise StepError(f"step type '{step.name}' returned no output {missing}", step=ctx.step)
    return output


def engine_run(
    engine: Engine,
    store: Store,
    ctx: StepContext,
    work: Path,
    input_ids: dict[str, str | list[str]],
) -> EngineRun:
    """The engine set up for one step of a build: spill and parts under `work` (a dir from
    `Store.engine_tmp`), progress to the step's line, and its inputs' estimated size in memory
    (what a global step is checked against before it starts)."""
    ids = [i for v in input_ids.values() for i in (v if isinstance(v, list) else [v])]
    engine.use(work / "spill", ctx.progress)
    rows = {i: int(store.manifest_by_id(i)["rows"]) for i in ids}
    return EngineRun(
        engine,
        work / "out",
        estimated_bytes=sum(_estimate(store, i, rows[i]) for i in ids),
        rows=sum(rows.values()),
    )


def _estimate(store: Store, version_id: str, rows: int) -> int:
    """A version's size in memory: its Parquet footers' uncompressed size, or its rows times the
    mean size of its first rows when larger (dictionary-encoded text decodes to several times
    its footer size)."""
    sampled = rows * mean_row_bytes(store.scan(version_id))
    return max(store.estimate_bytes(version_id), int(sampled))


@contextmanager
def disk_full(store: Store, name: str) -> Iterator[None]:
    """A full disk while the engine writes parts or spills is the store's clear error."""
    try:
        yield
    except Exception as exc:
        if is_no_space(exc):
            raise store._no_space(exc, None, name) from None
        raise


def run_step(
    step_type_name: str,
    inputs: dict[str, pl.DataFrame | list[pl.DataFrame]],
    params: dict[str, Any] | None = None,
    seed: int = 0,
    artifacts_dir: Path | None = None,
) -> StepOutput:
    """Run one step type on in-memory frames, without a store (for tests and notebooks)."""
    step_type = get_step_type(step_type_name)
    parsed = load_config(
        step_type.Params, params or {}, file="<python>", step=step_type_name, what=step_type.name
    )
    lazy = {
        k: ([f.lazy() for f in v] if isinstance(v, list) else v.lazy()) for k, v in inputs.items()
    }
    with tempfile.TemporaryDirectory() as tmp:
        ctx = StepContext(
            step=step_type_name,
            pipeline="<python>",
            seed=seed,
            artifacts_dir=artifacts_dir or Path(tmp),
        )
        step = step_type()
        step.check_dependencies()
        output = call_step(step, lazy, parsed, ctx)
        output.frames = {
            k: (v.collect() if isinstance(v, pl.LazyFrame) else v) for k, v in output.frames.items()
        }
        return output
