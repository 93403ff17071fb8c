"""Step `leakage`: train/eval overlap, contamination, group/temporal/target leakage."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import polars as pl

from tamis.curate.leakage import LeakageConfig
from tamis.pipelines.steps.base import Inputs, Step, StepContext, StepOutput

#: bytes of the text index per byte of eval text (n-gram hashes, shingle sets, their copies)
TEXT_INDEX_FACTOR = 8
#: bytes per eval row of the near check's index besides its shingles (band keys, signature)
NEAR_ROW_BYTES = 600


class Leakage(Step[LeakageConfig]):
    """Check the input against eval sets (`against`): overlap, contamination, group/time/target leakage.

    Drops or flags leaked rows of the input only; the eval sets are never changed. Global in
    memory; under the bounded engine the input streams (`run_bounded`): every row check is a join
    with an eval set held in memory, and target leakage reads only the label and feature columns.
    Under Ray the eval sets' index is built once and broadcast to one task per range of rows.
    An eval set too big for half the memory limit is refused before the step starts.
    """

    name = "leakage"
    Params = LeakageConfig
    version = 2  # null labels dropped and counted (issue 12)
    inputs = ("input", "against")
    list_inputs = ("against",)

    def output_schema(self, schema: pl.Schema, params: LeakageConfig) -> pl.Schema:
        if params.action != "flag":
            return schema
        return pl.Schema(
            [
                *schema.items(),
                ("is_leakage_issue", pl.Boolean),
                ("leakage_score", pl.Float64),
                ("leakage_reasons", pl.List(pl.String)),
            ]
        )

    def run(self, inputs: Inputs, params: LeakageConfig, ctx: StepContext) -> StepOutput:
        from tamis.curate.leakage import find_leakage

        df = inputs["input"].collect()
        evals = {name: f.collect() for name, f in _against(inputs).items()}
        ctx.progress("checking leakage")
        out, report, tables = find_leakage(df, evals, params, seed=ctx.seed)
        return _output(out, report, tables, ctx)

    def run_bounded(
        self, engine: Any, inputs: Inputs, params: LeakageConfig, ctx: StepContext, out: Path
    ) -> tuple[list[Any], StepOutput]:
        """The eval sets in memory (checked against the limit first), the input streamed once;
        an engine with `find_leakage` (Ray: the eval side broadcast to one scan task per range
        of rows, `ray_leakage`) runs the same scan its own way, after the same checks."""
        from tamis.curate.leakage_bounded import find_leakage_bounded

        # an engine that distributes the scan (Ray) has its own runner of the same checks
        find = getattr(engine, "find_leakage", None)
        engine = getattr(engine, "local", engine)
        source: pl.LazyFrame = inputs["input"]
        lazies = _against(inputs)

        def check_fits() -> None:
            eval_need = _check_eval_fits(engine, lazies, params, ctx)
            if params.label and params.target_auc_threshold is not None:
                _check_target_fits(engine, source, params, ctx, eval_need)

        run = find if find is not None else partial(find_leakage_bounded, engine)
        parts, report, tables = run(
            source, lazies, params, out=out, seed=ctx.seed, check_fits=check_fits
        )
        return parts, _output(None, report, tables, ctx)


def _against(inputs: Inputs) -> dict[str, pl.LazyFrame]:
    against = inputs["against"]
    frames = against if isinstance(against, list) else [against]
    return {f"against_{i}": f for i, f in enumerate(frames)}


def _output(
    out: pl.DataFrame | None,
    report: dict[str, Any],
    tables: dict[str, pl.DataFrame],
    ctx: StepContext,
) -> StepOutput:
    from tamis.curate.dedup.html import write_leakage_html

    write_leakage_html(report, ctx.artifacts_dir / "leakage.html")
    report["html"] = "leakage.html"
    frames: dict[str, pl.DataFrame | pl.LazyFrame] = {} if out is None else {"data": out}
    return StepOutput(frames=frames, report=report, tables=tables)


def eval_memory(lf: pl.LazyFrame, params: LeakageConfig) -> tuple[int, int]:
    """(rows, estimated bytes) of one eval set held in memory with its indexes: the frame with
    its working copies, plus the text checks' hashes and band keys."""
    from tamis.pipelines.engines.local import mean_row_bytes
    from tamis.pipelines.engines.memory import WORKING_FACTOR

    rows = int(lf.select(pl.len()).collect().item())
    need = rows * mean_row_bytes(lf) * WORKING_FACTOR
    if params.text and params.text in lf.collect_schema().names():
        head = lf.select(pl.col(params.text).cast(pl.String)).head(2000).collect()[params.text]
        per_text = float(head.str.len_bytes().mean() or 0.0)  # type: ignore[arg-type]
        need += rows * per_text * TEXT_INDEX_FACTOR
        if params.near_threshold is not None:
            need += rows * (4 * params.num_perm + NEAR_ROW_BYTES)
    return rows, int(need)


def _check_eval_fits(
    engine: Any, lazies: dict[str, pl.LazyFrame], params: LeakageConfig, ctx: StepContext
) -> int:
    """The eval sets with their indexes must fit half the limit (the input's batches and the
    open part take the other half); refused before the step starts otherwise."""
    from tamis.errors import StepError
    from tamis.pipelines.engines.memory import format_size

    rows, need = 0, 0
    for lf in lazies.values():
        r, n = eval_memory(lf, params)
        rows, need = rows + r, need + n
    if need > engine.memory_limit / 2:
        raise StepError(
            f"step type 'leakage' holds its eval sets (`against`) in memory while the input "
            f"streams: about {format_size(need)} for {rows:,} eval rows, over half the memory "
            f"limit of {format_size(engine.memory_limit)}; eval sets that do not fit (a "
            "partitioned join) are not supported",
            step=ctx.step,
            fix="put a `sample` step (e.g. `use: sample` with `n:`) on the eval set, check "
            "fewer eval sets in one step, or raise --memory-limit",
        )
    return need


def _check_target_fits(
    engine: Any, source: pl.LazyFrame, params: LeakageConfig, ctx: StepContext, eval_need: int
) -> None:
    """Target leakage reads the label and feature columns of the whole input: they must fit
    beside the eval sets; refused before the step starts otherwise."""
    from tamis.curate.leakage_scan import target_columns
    from tamis.errors import StepError
    from tamis.pipelines.engines.local import mean_row_bytes
    from tamis.pipelines.engines.memory import WORKING_FACTOR, format_size

    cols = target_columns(source.collect_schema(), params)
    projection = source.select(cols)
    rows = int(source.select(pl.len()).collect().item())
    data = int(rows * mean_row_bytes(projection))
    need = int(data * WORKING_FACTOR)
    if need + eval_need > engine.memory_limit:
        raise StepError(
            f"step type 'leakage' needs the label and {len(cols) - 1} feature column(s) of its "
            f"whole input in memory for target leakage: about {format_size(need)} for "
            f"{rows:,} rows ({format_size(data)} of data), over the memory limit of "
            f"{format_size(engine.memory_limit)} (with {format_size(eval_need)} of eval sets)",
            step=ctx.step,
            fix="set `target_auc_threshold: null` to skip target leakage, list fewer "
            "`features`, put a `sample` step before it, or raise --memory-limit",
        )
