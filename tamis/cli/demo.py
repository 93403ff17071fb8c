"""`tamis demo`: build the embedded demo pipeline into a store."""

from __future__ import annotations

import sys

import typer

from tamis.cli.render import (
    DEFAULT_STORE,
    JsonOpt,
    StoreOpt,
    Table,
    cli_errors,
    emit,
    err,
    escape,
    open_store,
    out,
)


@cli_errors
def demo(
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Build the embedded demo pipeline on a real dataset shipped with statsmodels (offline)."""
    from tamis.pipelines.demo import run_demo

    data = run_demo(open_store(store), progress=not as_json and sys.stderr.isatty())

    def render() -> None:
        out.print(
            f"[bold green]demo built[/] in {data['seconds']:.1f}s: pipeline "
            f"{data['pipeline_file']}, store {data['store']}"
        )
        for w in data.get("warnings", []):
            err.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
        if data.get("label_cleaning"):  # honest first: what label cleaning really did
            out.print(escape(data["label_cleaning"]["summary"]), highlight=False, soft_wrap=True)
        t = Table(title="versions")
        for c in ("ref", "rows", "id"):
            t.add_column(c)
        for v in data["versions"]:
            t.add_row(v["ref"], f"{v['rows']:,}", v["id"][:12])
        out.print(t)
        out.print("next:")
        for line in data["next"]:
            out.print(f"  {line}", soft_wrap=True, highlight=False)

    emit(data, as_json, render)


def register(app: typer.Typer) -> None:
    app.command()(demo)
