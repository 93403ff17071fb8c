"""`tamis verify [REF...]`: check that what the store serves is what it wrote (an fsck)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tamis.cli import render as ui


@ui.cli_errors
def verify(
    refs: Annotated[
        list[str] | None, typer.Argument(help="versions to check (ids or refs); default: all")
    ] = None,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="set damaged versions aside (into damaged/) and rebuild the catalog from the "
            "version dirs and refs.log",
        ),
    ] = False,
    store: ui.StoreOpt = ui.DEFAULT_STORE,
    as_json: ui.JsonOpt = False,
) -> None:
    """Recompute content hashes, compare rows and schemas with the manifests, check the catalog
    against the version dirs. Exit 1 on any mismatch."""
    from tamis.pipelines.verify import verify_store

    data = verify_store(ui.open_store(store), list(refs or []), repair=repair)

    def render() -> None:
        if data["problems"]:
            t = Table(title=f"{len(data['problems'])} problems in {store}")
            for c in ("kind", "version", "ref", "detail"):
                t.add_column(c)
            for p in data["problems"]:
                t.add_row(
                    escape(p["kind"]),
                    str(p.get("version", ""))[:12],
                    escape(p.get("ref", "")),
                    escape(p["detail"]),
                )
            ui.out.print(t)
        if repair:
            r = data["repair"]
            ui.out.print(
                f"repaired: catalog rebuilt with {r['versions']} versions and {r['refs']} refs; "
                f"{len(r['set_aside'])} damaged versions set aside in {Path(store) / 'damaged'}"
                + (f"; old catalog kept as {r['old_catalog']}" if r["old_catalog"] else ""),
                soft_wrap=True,
                highlight=False,
            )
            for p in data["after_repair"]["problems"]:
                text = escape(f"{p['kind']}: {p['detail']}")
                ui.err.print(f"[red]still wrong:[/] {text}", highlight=False)
        status = "[green]ok[/]" if data["ok"] else "[bold red]damaged[/]"
        ui.out.print(
            f"{status}: {data['versions_checked']} versions checked in {data['seconds']:.2f}s"
            + (
                ""
                if data["ok"] or repair
                else "; fix: `tamis verify --repair` sets damaged versions aside and rebuilds "
                "the catalog, then `tamis build` rebuilds what is missing"
            ),
            soft_wrap=True,
            highlight=False,
        )

    ui.emit(data, as_json, render)
    if not data["ok"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command(name="verify")(verify)
