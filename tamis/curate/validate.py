"""Data validation with Great Expectations (GX 1.x): declared expectations, results, a gate.

    report = validate_frame(df, ValidateConfig(expectations=[
        {"expect_column_values_to_not_be_null": {"column": "age"}},
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "age", "min_value": 0, "max_value": 120}},
    ], on_failure="fail"))                     # raises GateFailed naming the failed expectations
    suite = suggest_suite(df)                  # tamis.curate.starter_suite: a suite to edit

Expectations are GX expectation names (`expect_...`) with their kwargs, written either as
`{name: kwargs}` or `{type: name, kwargs: {...}}` (GX's own suite format; `expectation_type`,
the GX 0.x key, is accepted too). A GX suite JSON file (`{"name": ..., "expectations": [...]}`)
can be given instead of, or beside, inline expectations. Validation runs in an ephemeral GX
context (nothing written to disk, analytics off) on a pandas copy of the frame.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import Field

from tamis.config import Config
from tamis.errors import DataError, GateFailed

OnFailure = Literal["fail", "warn"]


class ValidateConfig(Config):
    """Which expectations to check and what a failure does (the `validate` step's params)."""

    expectations: list[dict[str, Any]] = Field(
        default_factory=list,
        description="GX expectations: `- expect_...: {kwargs}` or `- {type: expect_..., kwargs: {}}`",
    )
    suite: str | None = Field(
        default=None, description="a GX suite JSON file (relative to the pipeline YAML)"
    )
    on_failure: OnFailure = Field(
        default="fail", description="fail stops the build (exit 3, no version); warn records it"
    )
    mode: Literal["validate", "suggest"] = Field(
        default="validate",
        description="suggest writes a starter suite (suite.json in the version's artifacts)",
    )
    suggest_out: str | None = Field(
        default=None,
        description="suggest: also write the starter suite to this path (relative to the YAML)",
    )
    max_set_size: int = Field(
        default=20,
        ge=1,
        description="suggest: value sets for columns with at most this many values",
    )


def load_suite(path: str | Path) -> list[dict[str, Any]]:
    """Expectations from a GX suite JSON file (or a JSON list of expectations)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(
            f"suite file '{p}' does not exist",
            field="suite",
            fix="give the path of a GX suite JSON (relative to the pipeline YAML)",
        )
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(
            f"suite file '{p}' is not valid JSON: {exc}",
            field="suite",
            fix="fix the JSON (e.g. regenerate it with mode: suggest)",
        ) from None
    items = doc.get("expectations") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise DataError(
            f"suite file '{p}' has no 'expectations' list",
            field="suite",
            fix='expected {"name": ..., "expectations": [{"type": ..., "kwargs": ...}]}',
        )
    return [dict(e) for e in items]


def normalize_expectations(items: Sequence[Mapping[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """`(name, kwargs)` pairs from either declaration form; unknown names are errors."""
    known = set(_registered())
    out = []
    for i, raw in enumerate(items):
        if "type" in raw or "expectation_type" in raw:
            name = str(raw.get("type") or raw.get("expectation_type"))
            kwargs = dict(raw.get("kwargs") or {})
        elif len(raw) == 1:
            name, kwargs_any = next(iter(raw.items()))
            kwargs = dict(kwargs_any or {})
        else:
            raise DataError(
                f"expectation #{i + 1} is neither {{name: kwargs}} nor {{type: ..., kwargs: ...}}",
                field=f"expectations[{i}]",
                fix="e.g. - expect_column_values_to_not_be_null: {column: age}",
            )
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            raise DataError(
                f"unknown Great Expectations expectation '{name}'",
                field=f"expectations[{i}]",
                fix=("did you mean " + ", ".join(close) + "?")
                if close
                else "see https://greatexpectations.io/expectations",
            )
        out.append((name, kwargs))
    return out


def _registered() -> list[str]:
    _gx()
    from great_expectations.expectations.registry import (
        list_registered_expectation_implementations,
    )

    return list_registered_expectation_implementations()


def _gx() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx


def _context() -> Any:
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return ctx


def json_safe(value: Any) -> Any:
    """JSON-safe copies of GX result values (NaN -> None, numpy scalars -> Python)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _exception_message(info: Mapping[str, Any]) -> str | None:
    """GX puts one exception dict at the top or one per failed metric: the first message."""
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        if isinstance(value, Mapping) and value.get("exception_message"):
            return str(value["exception_message"])
    return None


def _describe(name: str, kwargs: Mapping[str, Any]) -> str:
    where = kwargs.get("column") or kwargs.get("column_list") or ""
    return f"{name}({where})" if where else name


def validate_frame(
    df: pl.DataFrame,
    config: ValidateConfig,
    *,
    name: str = "tamis",
    base_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Run the config's expectations (and its suite's) on `df`; the report, or GateFailed (`fail`).

    A relative `suite` path is read from `base_dir` (the pipeline YAML's directory) when given.
    The report: `success`, `evaluated`, `failed`, and `results` (one entry per expectation with
    `expectation`, `kwargs`, `success`, `observed` (GX's result dict, trimmed) and `exception`).
    """
    on_failure = config.on_failure
    items = list(config.expectations)
    if config.suite is not None:
        suite = Path(config.suite)
        if base_dir is not None and not suite.is_absolute():
            suite = Path(base_dir) / suite
        items += load_suite(suite)
    if not items:
        raise DataError(
            "no expectations to check",
            field="expectations",
            fix="declare `expectations`, give a `suite` file, or use mode: suggest",
        )
    pairs = normalize_expectations(items)
    gx = _gx()
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    ctx = _context()
    source = ctx.data_sources.add_pandas("tamis")
    batch_def = source.add_dataframe_asset("data").add_batch_definition_whole_dataframe("all")
    batch = batch_def.get_batch(batch_parameters={"dataframe": df.to_pandas()})
    gx_suite = gx.ExpectationSuite(name=name)
    for exp_name, kwargs in pairs:
        try:
            # add_expectation_configuration() merges "equivalent" expectations (e.g. every
            # expect_column_to_exist becomes one); add_expectation() keeps each of them.
            gx_suite.add_expectation(
                ExpectationConfiguration(type=exp_name, kwargs=kwargs).to_domain_obj()
            )
        except Exception as exc:  # GX raises many types for bad kwargs
            raise DataError(
                f"expectation '{exp_name}' has invalid kwargs {kwargs}: {exc}",
                field="expectations",
                fix="check the expectation's arguments in the GX docs",
            ) from None
    result = batch.validate(gx_suite).to_json_dict()
    results = []
    for r in result["results"]:
        cfg = r["expectation_config"]
        kwargs = {k: v for k, v in cfg["kwargs"].items() if k != "batch_id"}
        observed = {
            k: v
            for k, v in (r.get("result") or {}).items()
            if k not in ("partial_unexpected_index_list",)
        }
        exc_message = _exception_message(r.get("exception_info") or {})
        results.append(
            json_safe(
                {
                    "expectation": cfg["type"],
                    "description": _describe(cfg["type"], kwargs),
                    "kwargs": kwargs,
                    "success": bool(r["success"]),
                    "observed": observed,
                    "exception": exc_message,
                }
            )
        )
    failed = [r for r in results if not r["success"]]
    report: dict[str, Any] = {
        "success": not failed,
        "evaluated": len(results),
        "failed": len(failed),
        "failed_expectations": [r["description"] for r in failed],
        "on_failure": on_failure,
        "rows": df.height,
        "results": results,
    }
    if failed and on_failure == "fail":
        names = ", ".join(r["description"] for r in failed)
        raise GateFailed(
            f"{len(failed)} of {len(results)} expectation(s) failed: {names}",
            failed=[
                {
                    "name": r["description"],
                    **{k: r[k] for k in ("expectation", "kwargs", "observed", "exception")},
                }
                for r in failed
            ],
            fix="fix the data upstream, edit the expectation, or set on_failure: warn",
        )
    return report
