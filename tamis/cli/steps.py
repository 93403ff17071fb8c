"""`tamis steps [NAME]`: the step types, their params and docs."""

from __future__ import annotations

from typing import Annotated

import typer

from tamis.cli.render import (
    JsonOpt,
    Table,
    cli_errors,
    emit,
    fmt,
    out,
)


@cli_errors
def steps(
    name: Annotated[str | None, typer.Argument(help="one step type to describe")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the step types with their params and docs."""
    from tamis.pipelines.registry import get_step_type, step_types

    types = [get_step_type(name)] if name else list(step_types().values())
    data = [t.describe() for t in types]

    def render() -> None:
        for d in data:
            t = Table(title=f"[bold]{d['name']}[/] - {d['doc']}", title_justify="left")
            for c in ("param", "type", "default", "doc"):
                t.add_column(c)
            for p in d["params"]:
                t.add_row(
                    p["name"],
                    p["type"],
                    "required" if p["required"] else fmt(p["default"]),
                    p["doc"],
                )
            out.print(t)
            extra = f"   extra: tamis[{d['extra']}]" if d["extra"] else ""
            out.print(
                f"  inputs: {', '.join(d['inputs']) or '(none)'}"
                + (
                    f" (optional: {', '.join(d['optional_inputs'])})"
                    if d["optional_inputs"]
                    else ""
                )
                + extra
            )

    emit({"steps": data}, as_json, render)


def register(app: typer.Typer) -> None:
    app.command()(steps)
