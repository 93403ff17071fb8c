"""`tamis validate suggest DATA --out suite.json` and `tamis validate check DATA --suite suite.json`.

DATA is a store ref/id (`<pipeline>/<step>`) or a data file (.parquet/.csv/.tsv/.jsonl).
`check` exits 0 when every expectation passes, 3 (gate failed, each failure named) otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tamis.cli.render import DEFAULT_STORE, JsonOpt, StoreOpt, cli_errors, emit, out
from tamis.render import render_report

DataArg = Annotated[str, typer.Argument(help="store ref/id or data file")]

HELP = "Great Expectations: suggest a starter suite, check data against one."
validate_app = typer.Typer(help=HELP, no_args_is_help=True)


@validate_app.command("suggest")
@cli_errors
def suggest(
    data: DataArg,
    out_path: Annotated[Path, typer.Option("--out", help="where to write the suite JSON")],
    max_set_size: Annotated[int, typer.Option(help="value sets up to this many values")] = 20,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Write a starter GX suite describing DATA (schema, nulls, ranges, value sets)."""
    from tamis.pipelines.validate import suggest_data_suite

    result = suggest_data_suite(data, store, out_path, max_set_size=max_set_size)
    text = f"wrote {result['expectations']} expectations to {out_path}; edit them"
    emit(result, as_json, lambda: out.print(text, markup=False, highlight=False))


@validate_app.command("check")
@cli_errors
def check(
    data: DataArg,
    suite: Annotated[Path, typer.Option("--suite", help="GX suite JSON file")],
    on_failure: Annotated[str, typer.Option(help="fail (exit 3) or warn")] = "fail",
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Validate DATA against a GX suite; exit 3 naming the failed expectations."""
    from tamis.pipelines.validate import check_data

    if on_failure not in ("fail", "warn"):
        raise typer.BadParameter("use fail or warn", param_hint="--on-failure")
    report = check_data(data, store, suite, on_failure="fail" if on_failure == "fail" else "warn")
    summary = {k: v for k, v in report.items() if k != "results"}
    emit(report, as_json, lambda: render_report(summary, title="validation"))


def register(app: typer.Typer) -> None:
    app.add_typer(validate_app, name="validate")
