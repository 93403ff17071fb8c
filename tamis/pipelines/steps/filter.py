"""`filter`: keep rows matching a SQL boolean expression (Polars) or a DuckDB query."""

from __future__ import annotations

import difflib
from typing import Any

import polars as pl
from pydantic import Field, model_validator

from tamis.errors import StepError
from tamis.pipelines.steps.base import Step, StepContext, StepOutput, StepParams


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
            raise StepError(
                f"the query is not valid SQL: {_first_line(exc)}",
                field="params.query",
                fix="write one DuckDB SELECT over the table `input`",
            ) from None
        kinds = [s.type.name for s in statements]
        if kinds != ["SELECT"]:
            raise StepError(
                f"`query` must be one SELECT statement, got {', '.join(kinds) or 'nothing'}",
                field="params.query",
                fix="write one SELECT over the table `input`; ATTACH, COPY, SET, INSTALL, LOAD, "
                "PRAGMA and other statements are refused (a pipeline file cannot reach past its "
                "data)",
            )
        con.register("input", frame.to_arrow())
        try:
            table = con.sql(query).to_arrow_table()
        except duckdb.PermissionException as exc:
            raise StepError(
                f"the query tried to reach outside its input: {_first_line(exc)}",
                field="params.query",
                fix="a query sees only the table `input`: no files, databases or extensions",
            ) from None
        except duckdb.Error as exc:
            raise StepError(
                f"the query failed: {_first_line(exc)}",
                field="params.query",
                fix=f"the table `input` has columns: {', '.join(frame.columns)}",
            ) from None
    finally:
        con.close()
    return pl.DataFrame(pl.from_arrow(table))


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
    for name in names:
        if name not in columns:
            close = difflib.get_close_matches(name, columns, n=3)
            hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
            raise StepError(
                f"`where` names column '{name}', which the input does not have",
                column=name,
                field="params.where",
                fix=f"{hint}columns: {', '.join(columns)} (quote names with spaces or dashes "
                'in double quotes, e.g. "education-num" > 10)',
            )
    return expr


class Filter(Step):
    """Keep the rows that satisfy an expression; the report says how many were removed."""

    name = "filter"
    Params = FilterParams

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        p: FilterParams = params
        lf: pl.LazyFrame = inputs["input"]
        rows_in = lf.select(pl.len()).collect().item()
        if p.where is not None:
            expr = _check_where_columns(p.where, list(lf.collect_schema().names()))
            try:
                out = lf.filter(expr).collect()
            except Exception as exc:
                raise StepError(
                    f"the expression failed: {_first_line(exc)}",
                    field="params.where",
                    fix="check column names, types and SQL syntax",
                ) from None
        else:
            out = run_query(lf.collect(), p.query or "")
        report = {"rows_in": rows_in, "rows_out": out.height, "removed": rows_in - out.height}
        return StepOutput(frames={"data": out}, report=report)
