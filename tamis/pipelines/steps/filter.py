"""`filter`: keep rows matching a SQL boolean expression (Polars) or a DuckDB query."""

from __future__ import annotations

import re
from typing import Any

import polars as pl
from pydantic import Field, model_validator

from tamis.errors import StepError, did_you_mean
from tamis.pipelines.steps.base import (
    BatchResult,
    Inputs,
    Kind,
    MapStep,
    StepContext,
    StepOutput,
    StepParams,
)


class FilterParams(StepParams):
    where: str | None = Field(
        None,
        description='SQL boolean expression over the columns, e.g. "age >= 18 AND x IS NOT NULL"',
    )
    query: str | None = Field(
        None,
        description="a whole DuckDB SELECT over the table `input` (for joins, windows, ...)",
    )

    @model_validator(mode="after")
    def _one(self) -> FilterParams:
        if (self.where is None) == (self.query is None):
            raise ValueError("give exactly one of `where` or `query`")
        return self


#: DuckDB settings of the connection that runs a user's `query`: no files, no network, no
#: extensions, and no way to change that from the query (lock_configuration)
SANDBOX_CONFIG: dict[str, Any] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "python_enable_replacements": False,
    "allow_community_extensions": False,
}


def run_query(frame: pl.DataFrame, query: str) -> pl.DataFrame:
    """Run one user SELECT on a fresh in-memory DuckDB that sees only `input` (the step's rows).

    The connection cannot read or write files, attach databases, install or load extensions, or
    see Python variables, and its configuration is locked; any statement but a single SELECT
    (ATTACH, COPY, SET, INSTALL, LOAD, PRAGMA, CREATE, ...) is refused before it runs.
    """
    import duckdb

    con = duckdb.connect(":memory:", config=SANDBOX_CONFIG)
    try:
        con.execute("SET lock_configuration = true")
        try:
            statements = con.extract_statements(query)
        except duckdb.Error as exc:
            raise _query_error("the query is not valid SQL", exc, ONE_SELECT) from None
        kinds = [s.type.name for s in statements]
        if kinds != ["SELECT"]:
            raise _query_error(
                f"`query` must be one SELECT statement, got {', '.join(kinds) or 'nothing'}",
                None,
                "write one SELECT over the table `input`; ATTACH, COPY, SET, INSTALL, LOAD, "
                "PRAGMA and other statements are refused (a pipeline file cannot reach past its "
                "data)",
            )
        con.register("input", frame.to_arrow())
        try:
            table = con.sql(query).to_arrow_table()
        except duckdb.PermissionException as exc:
            raise _query_error(
                "the query tried to reach outside its input", exc, SANDBOXED
            ) from None
        except duckdb.Error as exc:
            fix = f"the table `input` has columns: {', '.join(frame.columns)}"
            raise _query_error("the query failed", exc, fix) from None
    finally:
        con.close()
    return pl.DataFrame(pl.from_arrow(table))


ONE_SELECT = "write one DuckDB SELECT over the table `input`"
SANDBOXED = "a query sees only the table `input`: no files, databases or extensions"


def _query_error(message: str, exc: Exception | None, fix: str) -> StepError:
    """An error in `params.query`, with the first line of DuckDB's message when there is one."""
    text = f"{message}: {_first_line(exc)}" if exc is not None else message
    return StepError(text, field="params.query", fix=fix)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().split("\n")[0][:500]


def _check_where_columns(where: str, columns: list[str]) -> pl.Expr:
    """Parse `where` and check the columns it names; a misspelled column is a clear error."""
    try:
        expr = pl.sql_expr(where)
    except Exception as exc:
        raise StepError(
            f"`where` is not a valid SQL expression: {_first_line(exc)}",
            field="params.where",
            fix='write a boolean SQL expression, e.g. "age >= 18 AND income IS NOT NULL"',
        ) from None
    try:
        names = expr.meta.root_names()
    except Exception:  # pragma: no cover - exotic expressions: leave the check to Polars
        names = []
    missing = [name for name in names if name not in columns]
    if missing:
        hint = did_you_mean(repr(missing[0]), [repr(c) for c in columns])
        raise StepError(
            f"`where` names column '{missing[0]}', which the input does not have",
            column=missing[0],
            field="params.where",
            fix=f"{hint}columns: {', '.join(columns)} (quote names with spaces or dashes "
            'in double quotes, e.g. "education-num" > 10)',
        )
    return expr


#: Polars methods that look past the current row (aggregates, windows, order): a `where` using
#: one needs the whole input, so the step is global for it (`.str.head(` and the like are row-wise)
_WHOLE_INPUT = re.compile(
    r"(?<!\.str)(?<!\.list)(?<!\.arr)(?<!\.dt)(?<!\.bin)\.(sum|mean|median|min|max|std|var|count|len|n_unique|unique|first|last|quantile|rank|"
    r"shift|diff|cum_\w+|over|mode|arg_\w+|implode|head|tail|sort\w*|reverse|rolling\w*|"
    r"ewm_\w+|is_duplicated|is_unique|is_first_distinct|is_last_distinct|gather\w*)\("
    r"|\b(int_range|len)\("
)


def _keep(lf: pl.LazyFrame, expr: pl.Expr) -> pl.DataFrame:
    """The rows of `lf` where `expr` holds (a failing expression is a clear error)."""
    try:
        return lf.filter(expr).collect()
    except Exception as exc:
        raise StepError(
            f"the expression failed: {_first_line(exc)}",
            field="params.where",
            fix="check column names, types and SQL syntax",
        ) from None


def _row_wise(where: str) -> bool:
    """Whether `where` looks at one row at a time (what SQL's WHERE does without subqueries)."""
    try:
        expr = pl.sql_expr(where)
    except Exception:  # the error is raised with its fix when the step runs
        return True
    return _WHOLE_INPUT.search(str(expr)) is None


class Filter(MapStep[FilterParams]):
    """Keep the rows that satisfy an expression; the report says how many were removed.

    With `where` (a row-wise SQL expression) a map step: each batch is filtered on its own. With a
    whole DuckDB `query` (joins, windows, ...), or a `where` that aggregates, a global step.
    """

    name = "filter"
    Params = FilterParams
    kind = "map"

    def kind_for(self, params: FilterParams) -> Kind:
        if params.where is not None and _row_wise(params.where):
            return "map"
        return "global"

    def output_schema(self, schema: pl.Schema, params: FilterParams) -> pl.Schema | None:
        return schema if params.where is not None else None

    def prepare(self, source: pl.LazyFrame, params: FilterParams, ctx: StepContext) -> pl.Expr:
        return _check_where_columns(params.where or "", list(source.collect_schema().names()))

    def map_batch(
        self, batch: pl.DataFrame, params: FilterParams, plan: pl.Expr, ctx: StepContext
    ) -> BatchResult:
        out = _keep(batch.lazy(), plan)
        return BatchResult(frame=out, stats={"rows_in": batch.height, "rows_out": out.height})

    def finish(
        self, merged: BatchResult, params: FilterParams, plan: pl.Expr, ctx: StepContext
    ) -> dict[str, Any]:
        rows_in = int(merged.stats.get("rows_in", 0))
        rows_out = int(merged.stats.get("rows_out", 0))
        return {"rows_in": rows_in, "rows_out": rows_out, "removed": rows_in - rows_out}

    def run(self, inputs: Inputs, params: FilterParams, ctx: StepContext) -> StepOutput:
        lf: pl.LazyFrame = inputs["input"]
        rows_in = lf.select(pl.len()).collect().item()
        if params.where is not None:  # one batch of everything, kept lazy (pushdown)
            out = _keep(lf, self.prepare(lf, params, ctx))
        else:
            out = run_query(lf.collect(), params.query or "")
        report = {"rows_in": rows_in, "rows_out": out.height, "removed": rows_in - out.height}
        return StepOutput(frames={"data": out}, report=report)
