"""`normalize`: strip whitespace, turn null tokens into nulls, cast dtypes, rename/select columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl
from pydantic import Field

from tamis.errors import StepError
from tamis.pipelines.casts import DTYPES, cast_expr, column_format, failed_casts
from tamis.pipelines.engines.local import read_slices
from tamis.pipelines.steps.base import BatchResult, MapStep, StepContext, StepParams


class NormalizeParams(StepParams):
    strip_whitespace: bool = Field(
        True, description="strip leading/trailing spaces in string columns"
    )
    null_values: list[str] = Field(
        default_factory=list,
        description="string tokens that mean missing (compared after stripping), e.g. ['?', 'NA']",
    )
    cast: dict[str, str] = Field(
        default_factory=dict,
        description=f"column -> dtype; dtypes: {', '.join(DTYPES)}",
    )
    rename: dict[str, str] = Field(default_factory=dict, description="old name -> new name")
    select: list[str] | None = Field(None, description="keep only these columns (after rename)")
    drop: list[str] = Field(default_factory=list, description="drop these columns (after rename)")
    strip_column_names: bool = Field(True, description="strip spaces around column names")
    infer_types: bool = Field(
        True,
        description="after stripping, turn string columns whose every value is a number into "
        "Int64/Float64 (CSV files like UCI Adult write ' 39')",
    )
    strict_cast: bool = Field(
        True, description="fail on values that do not cast; false turns them into nulls"
    )
    format: str | dict[str, str] | None = Field(
        None,
        description="strftime format for casts of text to date/datetime (e.g. '%d/%m/%Y' or "
        "'%Y-%m-%d %H:%M'): one for every such cast, or column -> format; inferred when omitted",
    )


#: rows per batch of the pass over the input that finds the numeric columns
PROBE_ROWS = 8192


def _numeric_columns(lf: pl.LazyFrame, columns: list[str]) -> dict[str, pl.DataType]:
    """String columns whose every non-null value parses as Int64 (or else Float64), over the
    whole input: the plan every batch casts by, so a batch of only '1' still gives Float64 when
    another batch holds '1.5'."""
    if not columns:
        return {}
    exprs = (
        [pl.col(c).is_not_null().sum().alias(f"n|{c}") for c in columns]
        + [
            pl.col(c).cast(pl.Int64, strict=False).is_not_null().sum().alias(f"i|{c}")
            for c in columns
        ]
        + [
            pl.col(c).cast(pl.Float64, strict=False).is_not_null().sum().alias(f"f|{c}")
            for c in columns
        ]
    )
    # counted slice by slice: a query over the whole input would hold a few hundred MB of
    # Polars' read-ahead whatever the build's memory limit
    probe: dict[str, int] = {}
    for batch in read_slices(lf.select(columns), PROBE_ROWS):
        for k, v in batch.select(exprs).row(0, named=True).items():
            probe[k] = probe.get(k, 0) + int(v)
    found: dict[str, pl.DataType] = {}
    for c in columns:
        n = probe.get(f"n|{c}", 0)
        if n == 0:
            continue
        if probe.get(f"i|{c}") == n:
            found[c] = pl.Int64()
        elif probe.get(f"f|{c}") == n:
            found[c] = pl.Float64()
    return found


#: date formats tried (the one kept must parse the sample exactly as Polars' own inference does)
_DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%d-%m-%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%m-%d-%Y",
    "%m/%d/%Y",
    "%m.%d.%Y",
    "%Y%m%d",
)
_TIME_FORMATS = ("%H:%M:%S%.f", "%H:%M:%S", "%H:%M")
_DATETIME_FORMATS = tuple(
    f"{d}{sep}{t}" for d in _DATE_FORMATS for sep in ("T", " ") for t in _TIME_FORMATS
)
#: values a date format is inferred from (the first non-null ones of the whole input)
DATE_SAMPLE = 1000


def _date_formats(
    lf: pl.LazyFrame, p: NormalizeParams, cast_from: dict[str, pl.DataType]
) -> dict[str, str | None]:
    """The format of every text-to-date/datetime cast: the one given in `format:`, else the one
    Polars infers from the input's first value, found once here (the first candidate that parses
    the first DATE_SAMPLE non-null values exactly as Polars' inference does), so every batch
    parses the same way. None when no candidate matches (Polars then infers per batch)."""
    found: dict[str, str | None] = {}
    for col, dtype in p.cast.items():
        given = column_format(p.format, col)
        if dtype not in ("date", "datetime") or given is not None or cast_from[col] != pl.String:
            found[col] = given
            continue
        sample = lf.select(pl.col(col).drop_nulls().head(DATE_SAMPLE)).collect().to_series()
        found[col] = _infer_format(sample, dtype) if sample.len() else None
    return found


def _infer_format(sample: pl.Series, dtype: str) -> str | None:
    parse = (
        (lambda fmt: sample.str.to_date(format=fmt, strict=False))
        if dtype == "date"
        else (lambda fmt: sample.str.to_datetime(format=fmt, strict=False))
    )
    try:
        inferred = parse(None)
    except pl.exceptions.PolarsError:
        return None
    if not inferred.null_count() < sample.len():
        return None
    for fmt in _DATE_FORMATS if dtype == "date" else _DATETIME_FORMATS:
        try:
            if parse(fmt).equals(inferred):
                return fmt
        except pl.exceptions.PolarsError:
            continue
    return None


def _clean_strings(lf: pl.LazyFrame, strings: list[str], p: NormalizeParams) -> pl.LazyFrame:
    """Strip whitespace and turn null tokens into nulls in the string columns."""
    exprs = []
    for col in strings:
        e = pl.col(col)
        if p.strip_whitespace:
            e = e.str.strip_chars()
        if p.null_values:
            tokens = [t.strip() if p.strip_whitespace else t for t in p.null_values]
            e = pl.when(e.is_in(tokens)).then(None).otherwise(e)
        exprs.append(e.alias(col))
    return lf.with_columns(exprs) if exprs else lf


def _stripped_names(schema: pl.Schema, p: NormalizeParams) -> dict[str, str]:
    """Column names with spaces around them -> stripped (an error when two would clash)."""
    if not p.strip_column_names:
        return {}
    final = [c.strip() for c in schema]
    clash = sorted({n for n in final if final.count(n) > 1})
    if clash:
        twins = [repr(c) for c in schema if c.strip() == clash[0]]
        raise StepError(
            f"stripping spaces from column names would give two columns named "
            f"'{clash[0]}' ({', '.join(twins)})",
            column=clash[0],
            fix="rename one of them with `rename:` first, or set strip_column_names: false",
        )
    return {c: c.strip() for c in schema if c != c.strip()}


def _check_renames(columns: list[str], p: NormalizeParams) -> list[str]:
    """The column names after `rename` (errors for a missing column or two equal names)."""
    for old in p.rename:
        if old not in columns:
            raise StepError(
                f"cannot rename missing column '{old}'",
                column=old,
                fix=f"columns: {', '.join(columns)}",
            )
    names = [p.rename.get(c, c) for c in columns]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise StepError(
            f"`rename` would give two columns named '{twice[0]}'",
            column=twice[0],
            field="params.rename",
            fix="rename to a name no other column has (or drop that column in a later step)",
        )
    return names


def _check_casts_and_selection(names: list[str], p: NormalizeParams) -> list[str]:
    """Errors for casts of missing columns or unknown dtypes, and for select/drop of missing
    columns; the output's column names."""
    for col, dtype in p.cast.items():
        if col not in names:
            raise StepError(
                f"cannot cast missing column '{col}'",
                column=col,
                fix=f"columns: {', '.join(names)}",
            )
        if dtype not in DTYPES:
            raise StepError(
                f"unknown dtype '{dtype}' for column '{col}'",
                column=col,
                fix=f"dtypes: {', '.join(DTYPES)}",
            )
    for col in [*(p.select or []), *p.drop]:
        if col not in names:
            raise StepError(
                f"no column '{col}' to select or drop",
                column=col,
                fix=f"columns: {', '.join(names)}",
            )
    kept = list(p.select) if p.select is not None else names
    return [c for c in kept if c not in p.drop]


@dataclass
class NormalizePlan:
    """What `prepare` learns from the whole input, so every batch is cleaned the same way."""

    #: the input's string columns (stripped and null tokens cleared)
    strings: list[str]
    #: column names with spaces -> stripped
    column_names: dict[str, str]
    #: string columns (stripped names) that hold only numbers -> Int64 or Float64
    numeric: dict[str, pl.DataType]
    #: every cast column's dtype before its cast (after the numeric inference and renames)
    cast_from: dict[str, pl.DataType]
    #: every cast column's text-to-date format: given, or inferred once over the input
    formats: dict[str, str | None]
    #: the output's columns
    columns: list[str]


class Normalize(MapStep[NormalizeParams]):
    """Clean raw tables: whitespace, null tokens, dtypes, column names and selection.

    A map step: which string columns hold only numbers is decided over the whole input in
    `prepare`, then every batch is cleaned and cast by that plan. A text-to-date cast without
    `format:` gets its format once in `prepare` too (the one Polars infers from the input's first
    value), so a batch whose first value is ambiguous is parsed as every other batch.
    """

    name = "normalize"
    Params = NormalizeParams
    kind = "map"

    def prepare(
        self, source: pl.LazyFrame, params: NormalizeParams, ctx: StepContext
    ) -> NormalizePlan:
        p = params
        schema = source.collect_schema()
        strings = [c for c, t in schema.items() if t == pl.String]
        column_names = _stripped_names(schema, p)
        lf = _clean_strings(source, strings, p).rename(column_names)
        stripped = [column_names.get(c, c) for c in strings]
        numeric = (
            _numeric_columns(lf, [c for c in stripped if c not in p.cast]) if p.infer_types else {}
        )
        columns = [column_names.get(c, c) for c in schema]
        names = _check_renames(columns, p)
        out_columns = _check_casts_and_selection(names, p)
        typed = lf.with_columns([pl.col(c).cast(t, strict=False) for c, t in numeric.items()])
        renamed = typed.rename(p.rename)
        schema_out = renamed.collect_schema()
        cast_from = {col: schema_out[col] for col in p.cast}
        formats = _date_formats(renamed, p, cast_from)
        return NormalizePlan(strings, column_names, numeric, cast_from, formats, out_columns)

    def map_batch(
        self, batch: pl.DataFrame, params: NormalizeParams, plan: NormalizePlan, ctx: StepContext
    ) -> BatchResult:
        p = params
        lf = _clean_strings(batch.lazy(), plan.strings, p).rename(plan.column_names)
        lf = lf.with_columns([pl.col(c).cast(t, strict=False) for c, t in plan.numeric.items()])
        before_cast = lf.rename(p.rename)
        lf = before_cast.with_columns(
            [
                cast_expr(
                    col,
                    dtype,
                    plan.cast_from[col],
                    fmt=plan.formats[col],
                    strict=p.strict_cast,
                )
                for col, dtype in p.cast.items()
            ]
        )
        lf = lf.select(plan.columns)
        try:
            df = lf.collect()
        except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
            formats = {c: f for c, f in plan.formats.items() if f is not None}
            text = failed_casts(before_cast, p.cast, formats) or str(exc).split("\n\n")[0].strip()
            dates = [c for c, d in p.cast.items() if d in ("date", "datetime")]
            fix = "fix the dtype in `cast:` or set strict_cast: false (values that do not cast "
            fix += "become nulls)"
            if dates:
                fix += "; for dates give `format:` (e.g. '%d/%m/%Y')"
            raise StepError(f"a cast failed: {text}", fix=fix) from None
        nulls = df.null_count().row(0)
        stats = {f"nulls|{c}": int(n) for c, n in zip(df.columns, nulls, strict=True)}
        return BatchResult(frame=df, stats={"rows": df.height, **stats})

    def finish(
        self, merged: BatchResult, params: NormalizeParams, plan: NormalizePlan, ctx: StepContext
    ) -> dict[str, Any]:
        rows = int(merged.stats.get("rows", 0))
        nulls = {c: int(n) for c in plan.columns if (n := merged.stats.get(f"nulls|{c}", 0))}
        return {
            "rows_in": rows,
            "rows_out": rows,
            "columns": plan.columns,
            "nulls_per_column": nulls,
        }

    def output_schema(self, schema: pl.Schema, params: NormalizeParams) -> pl.Schema:
        """Input columns stripped and renamed; cast columns their dtype; string columns that may
        hold only numbers are data-dependent (String, Int64 or Float64): `pl.Unknown`."""
        p = params
        out: dict[str, pl.DataType] = {}
        for col, dtype in schema.items():
            name = col.strip() if p.strip_column_names else col
            inferable = dtype == pl.String and p.infer_types and name not in p.cast
            name = p.rename.get(name, name)
            out[name] = pl.Unknown() if inferable else dtype
            if name in p.cast and p.cast[name] in DTYPES:
                out[name] = DTYPES[p.cast[name]]()
        kept = list(p.select) if p.select is not None else list(out)
        return pl.Schema({c: out[c] for c in kept if c not in p.drop and c in out})
