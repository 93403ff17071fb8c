"""`tamis diff A B [--key COLS]`: compare two versions."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tamis.cli.render import DEFAULT_STORE, JsonOpt, StoreOpt, cli_errors, emit, open_store, out


@cli_errors
def diff(
    a: Annotated[str, typer.Argument(help="the old version")],
    b: Annotated[str, typer.Argument(help="the new version")],
    key: Annotated[
        list[str] | None,
        typer.Option(
            "--key",
            help="match rows on these columns (comma-separated or repeated) and show per-column changes",
        ),
    ] = None,
    examples: Annotated[int, typer.Option("--examples", help="examples to show per change")] = 3,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Compare two versions: schema first, then whole rows (multisets), or rows matched by --key."""
    from tamis.pipelines.diff import diff_versions

    key_cols = [c.strip() for k in key or [] for c in k.split(",") if c.strip()]
    data = diff_versions(open_store(store), a, b, examples=examples, key=key_cols or None)

    def render() -> None:
        e = escape
        out.print(
            f"[bold]{e(str(data['a']['name']))}[/] ({data['a']['rows']:,} rows, "
            f"{data['a']['columns']} columns) -> [bold]{e(str(data['b']['name']))}[/] "
            f"({data['b']['rows']:,} rows, {data['b']['columns']} columns)",
            highlight=False,
        )
        sch = data["schema"]
        common = data["compared_columns"]
        if data["schema_changed"]:
            out.print(
                f"[yellow]schema differs:[/] {len(sch['removed'])} column(s) only in A, "
                f"{len(sch['added'])} only in B, {len(sch['retyped'])} retyped",
                highlight=False,
            )
            for col in sch["removed"]:
                out.print(f"  only in A: {e(col['name'])} ({col['dtype']})", highlight=False)
            for col in sch["added"]:
                out.print(f"  only in B: {e(col['name'])} ({col['dtype']})", highlight=False)
            for col in sch["retyped"]:
                out.print(
                    f"  retyped: {e(col['name'])} {col['from']} -> {col['to']} (compared as text)",
                    highlight=False,
                )
            for pair in sch["possibly_renamed"]:
                out.print(
                    f"  possibly renamed: {e(pair['from'])} -> {e(pair['to'])}", highlight=False
                )
            if not common:
                out.print("  no column in common: rows cannot be compared", highlight=False)
                return
            shown = ", ".join(common[:8]) + (", ..." if len(common) > 8 else "")
            out.print(
                f"  rows below are compared on the {len(common)} common column(s) only: {e(shown)}",
                highlight=False,
            )
        else:
            out.print(f"  same schema ({len(common)} columns)", highlight=False)
        out.print(
            f"  whole rows: added {data['rows_added']:,}, removed {data['rows_removed']:,}, "
            f"unchanged {data['rows_unchanged']:,} (multisets; a changed row is one removed "
            "and one added)",
            highlight=False,
        )
        k = data.get("key")
        if not k:
            return
        out.print(
            f"  by key ({e(', '.join(k['columns']))}): matched {k['rows_matched']:,}, "
            f"changed {k['rows_changed']:,}, same {k['rows_same']:,}; only in A "
            f"{k['rows_only_in_a']:,}, only in B {k['rows_only_in_b']:,}",
            highlight=False,
        )
        for what, n_a, n_b in (
            ("null key", k["null_key_rows_a"], k["null_key_rows_b"]),
            ("repeated key (not compared)", k["repeated_key_rows_a"], k["repeated_key_rows_b"]),
        ):
            if n_a or n_b:
                out.print(f"  rows with a {what}: A {n_a:,}, B {n_b:,}", highlight=False)
        if k["columns_changed"]:
            t = Table(title="changed values by column (matched rows)")
            for c in ("column", "rows changed", "examples (key: A -> B)"):
                t.add_column(c)
            for col, n in k["columns_changed"].items():
                ex = "; ".join(
                    ", ".join(str(x[c]) for c in k["columns"]) + f": {x['a']!r} -> {x['b']!r}"
                    for x in k["examples"].get(col, [])
                )
                t.add_row(e(col), f"{n:,}", e(ex))
            out.print(t)

    emit(data, as_json, render)
