"""`tamis steps [NAME] [--markdown]`: the step types, their kind, params and docs."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from tamis.cli.render import JsonOpt, Table, cli_errors, emit, escape, fmt, out


def _render(d: dict[str, Any]) -> None:
    """One step type as a table of its params, then its kind and inputs."""
    t = Table(
        title=f"[bold]{escape(d['name'])}[/] ({d['kind']}) - {escape(d['doc'])}",
        title_justify="left",
    )
    for c in ("param", "type", "default", "doc"):
        t.add_column(c)
    for p in d["params"]:
        t.add_row(
            escape(p["name"]),
            escape(p["type"]),
            "required" if p["required"] else escape(fmt(p["default"])),
            escape(p["doc"]),
        )
    out.print(t)
    optional = f" (optional: {', '.join(d['optional_inputs'])})" if d["optional_inputs"] else ""
    extra = f"   extra: tamis[{d['extra']}]" if d["extra"] else ""
    out.print(
        f"  kind: {d['kind']}   inputs: {', '.join(d['inputs']) or '(none)'}{optional}{extra}",
        markup=False,
        highlight=False,
    )


@cli_errors
def steps(
    name: Annotated[str | None, typer.Argument(help="one step type to describe")] = None,
    markdown: Annotated[
        bool,
        typer.Option("--markdown", help="print each step's param table as Markdown (for docs)"),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the step types with their kind (map, keyed or global), params and docs."""
    from tamis.pipelines.registry import get_step_type, step_types
    from tamis.pipelines.step_docs import steps_markdown

    types = [get_step_type(name)] if name else list(step_types().values())
    data = [t.describe() for t in types]
    if markdown and not as_json:
        sys.stdout.write(steps_markdown(data, header=name is None))
        return

    def render() -> None:
        for d in data:
            _render(d)

    emit({"steps": data}, as_json, render)
