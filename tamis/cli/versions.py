"""`tamis versions`, `tamis show`, `tamis lineage`: what the store holds."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tamis.cli.render import (
    DEFAULT_STORE,
    JsonOpt,
    StoreOpt,
    cli_errors,
    emit,
    fmt,
    open_store,
    out,
)
from tamis.render import render_report


@cli_errors
def versions(
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="only this pipeline")] = None,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """List the versions in the store (newest last), with their refs."""
    rows = open_store(store).list_versions(pipeline)

    def render() -> None:
        t = Table(title=f"{len(rows)} versions in {escape(str(store))}")
        for c in ("id", "refs", "step type", "rows", "cols", "created"):
            t.add_column(c)
        for r in rows:
            t.add_row(
                r["id"][:12],
                escape(
                    ", ".join(
                        f"{x} (stale)" if x in r.get("stale_refs", ()) else x for x in r["refs"]
                    )
                ),
                escape(str(r["step_type"])),
                f"{r['rows']:,}",
                str(r["columns"]),
                str(r["created_at"])[:19],
            )
        out.print(t)

    emit({"versions": rows}, as_json, render)


@cli_errors
def show(
    ref: Annotated[str, typer.Argument(help="version id, id prefix, or ref")],
    rows: Annotated[int, typer.Option("--rows", help="also print the first N rows")] = 0,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Show a version: its manifest, schema and report (or a sweep's result table)."""
    s = open_store(store)
    from tamis.sweeps import load_sweep_result, render_sweep_table

    sweep = load_sweep_result(s, ref)
    if sweep is not None:
        emit(sweep, as_json, lambda: out.print(render_sweep_table(sweep)))
        return
    from tamis.pipelines.versions import version_details

    payload = version_details(s, ref, rows=rows)
    manifest = payload

    def render() -> None:
        t = Table(show_header=False, title=f"version {manifest['id'][:12]}")
        t.add_column("key", style="bold")
        t.add_column("value")
        step = manifest.get("step") or {}
        for k, v in (
            ("id", manifest["id"]),
            ("name", manifest.get("name")),
            (
                "step",
                f"{step.get('name')} ({step.get('type')} v{step.get('version')})"
                + (
                    "; not deterministic: fresh noise per build"
                    if step.get("deterministic") is False
                    else ""
                ),
            ),
            ("params", step.get("params")),
            ("seed", manifest.get("seed")),
            ("rows", f"{manifest['rows']:,}"),
            ("parents", [f"{p['role']}: {p['id'][:12]}" for p in manifest["parents"]]),
            ("created", manifest.get("created_at")),
            ("content hash", manifest.get("content_hash")),
            ("tables", manifest.get("tables")),
            ("artifacts", manifest.get("artifacts")),
        ):
            t.add_row(k, escape(fmt(v)))
        out.print(t)
        schema = Table(title="schema")
        schema.add_column("column")
        schema.add_column("dtype")
        for col in manifest["schema"]:
            schema.add_row(escape(col["name"]), escape(col["dtype"]))
        out.print(schema)
        if manifest.get("report"):
            render_report(manifest["report"])
        if payload.get("audits"):
            out.print(_audits_table(payload["audits"]))
        if rows:
            out.print(s.read(manifest["id"]).head(rows))

    emit(payload, as_json, render)


def _audits_table(audits: list[dict[str, Any]]) -> Table:
    """The privacy audits that took a version as an input (release decisions of `tamis audit`)."""
    t = Table(title=f"privacy audits that took this version as input ({len(audits)})")
    for c in ("when", "as", "gate", "policy (sha256)", "record"):
        t.add_column(c)
    for a in audits:
        gate = "[green]PASSED[/]" if a["passed"] else "[red]FAILED[/]"
        if a.get("failed"):
            gate += escape(f" ({', '.join(a['failed'])})")
        policy = f"{a.get('policy')} ({str(a.get('policy_sha256'))[:12]})"
        t.add_row(
            escape(str(a.get("created_at"))),
            escape(", ".join(a["as"])),
            gate,
            escape(policy),
            escape(str(a.get("record"))),
        )
    return t


@cli_errors
def lineage(
    ref: Annotated[str, typer.Argument(help="version id, id prefix, or ref")],
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Show every ancestor of a version and the steps that connect them."""
    data = open_store(store).lineage(ref)

    def render() -> None:
        names = {n["id"]: n for n in data["nodes"]}
        from rich.tree import Tree

        def label(vid: str) -> str:
            n = names.get(vid, {})
            text = f"{vid[:12]} {n.get('name', '?')} [{n.get('step_type', '?')}, {n.get('rows', 0):,} rows]"
            return escape(text)

        def grow(tree: Tree, vid: str, seen: set[str]) -> None:
            for e in data["edges"]:
                if e["child"] == vid:
                    branch = tree.add(f"{escape(e['role'])}: {label(e['parent'])}")
                    if e["parent"] not in seen:
                        grow(branch, e["parent"], seen | {e["parent"]})

        root = Tree(label(data["id"]))
        grow(root, data["id"], {data["id"]})
        out.print(root)

    emit(data, as_json, render)
