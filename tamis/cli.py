"""The `tamis` command line: typer + rich. Formatting only; the work happens in `tamis.pipelines`.

Conventions: `--json` prints exactly one JSON document on stdout (logs and progress go to stderr);
exit 0 success, 1 error (the message names the file/step/field and the fix), 2 usage, 3 a gate
failed. Other modules add commands through `tamis/cli_<topic>.py`, each with `register(app)`.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import tamis
from tamis.errors import GateFailed, TamisError
from tamis.pipelines.formats import DATA_SUFFIXES as DATA_SUFFIXES
from tamis.render import fmt as _fmt
from tamis.render import render_report

app = typer.Typer(
    name="tamis",
    help="tamis: build curated, versioned, audited datasets and measure what curation does.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

StoreOpt = Annotated[
    Path,
    typer.Option("--store", envvar="TAMIS_STORE", help="store directory (or TAMIS_STORE)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document on stdout")]
store_option = StoreOpt
json_option = JsonOpt
DEFAULT_STORE = Path(".tamis")

F = TypeVar("F", bound=Callable[..., Any])

# Data file suffixes the commands that take DATA (a store ref or a file) read: DATA_SUFFIXES,
# imported above from tamis.pipelines.formats (the ones `tamis export` writes).


def emit(data: Any, as_json: bool, render: Callable[[], None] | None = None) -> None:
    """Print `data` as one JSON document (with --json) or call `render` for people."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    elif render is not None:
        render()
    else:
        out.print_json(json.dumps(data, default=str))


def missing_file(what: str, ref: str) -> TamisError:
    """The error for a DATA argument that looks like a file path but names no file."""
    return TamisError(
        f"{what} file does not exist",
        file=ref,
        fix="pass an existing file or a store ref (<pipeline>/<step>)",
    )


def check_store_path(path: Any) -> None:
    """A --store that names an existing file (not a directory) is an error, before any work."""
    if isinstance(path, Path) and path.exists() and not path.is_dir():
        raise TamisError(
            "--store names a file, not a store directory",
            file=str(path),
            field="--store",
            fix="pass a directory (it is created if missing), e.g. --store .tamis",
        )


def _unexpected(exc: Exception) -> TamisError:
    """An exception tamis did not turn into a TamisError: a clear message, never a traceback."""
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else None
        return TamisError(
            exc.strerror or str(exc),
            file=str(where) if where is not None else None,
            fix="check the path, that its parent directories exist and are directories, and "
            "its permissions",
        )
    return TamisError(
        f"unexpected {type(exc).__name__}: {str(exc)[:1500]}",
        fix="this input is not handled; please report it (TAMIS_DEBUG=1 shows the traceback)",
    )


def cli_errors(fn: F) -> F:
    """Turn errors into one clear message (and a JSON error document with --json), never a
    traceback: TamisError as it is; any other exception as an `unexpected` error (exit 1), unless
    TAMIS_DEBUG=1. User text is printed escaped: `[...]` in a message is never read as markup."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            check_store_path(kwargs.get("store"))
            return fn(*args, **kwargs)
        except (typer.Exit, click.exceptions.ClickException, click.exceptions.Abort):
            raise
        except Exception as raw:
            if isinstance(raw, TamisError):
                exc = raw
            elif os.environ.get("TAMIS_DEBUG"):
                raise
            else:
                exc = _unexpected(raw)
            if kwargs.get("as_json"):
                sys.stdout.write(json.dumps(exc.to_json(), indent=2, default=str) + "\n")
            err.print(
                f"[bold red]error:[/] {escape(exc.render())}", highlight=False, soft_wrap=True
            )
            if isinstance(exc, GateFailed):
                for check in exc.failed:
                    name = escape(str(check.get("name", check)))
                    err.print(f"  [red]failed:[/] {name}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _store(path: Path) -> Any:
    from tamis.pipelines.store import Store

    return Store(path)


@app.command()
@cli_errors
def build(
    pipeline: Annotated[Path, typer.Argument(help="pipeline YAML file")],
    steps: Annotated[
        list[str] | None, typer.Argument(help="build only these steps (and what they need)")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="recompute the named STEPS, or every step if none")
    ] = False,
    seed: Annotated[int | None, typer.Option("--seed", help="override the pipeline seed")] = None,
    sources_under: Annotated[
        Path | None,
        typer.Option(
            "--sources-under",
            help="refuse sources outside DIR (for pipeline files received from someone else)",
        ),
    ] = None,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Build a pipeline: every step's output becomes a cached, immutable version."""
    from tamis.pipelines.runner import build as run_build
    from tamis.pipelines.sources import source_paths
    from tamis.pipelines.spec import load_pipeline

    spec = load_pipeline(pipeline)
    for name, path in source_paths(spec, under=sources_under).items():
        err.print(f"source {name}: {path}", markup=False, highlight=False, soft_wrap=True)
    if seed is not None:
        spec.seed = seed
    forced: bool | list[str] = (list(steps) if steps else True) if force else False
    result = run_build(
        spec,
        _store(store),
        force=forced,
        targets=steps or None,
        progress=not as_json and sys.stderr.isatty(),
    )
    payload = {**result.to_json(), "store": str(store)}

    def render() -> None:
        t = Table(title=f"{escape(spec.name)}: {len(result.steps)} steps in {result.seconds:.2f}s")
        for c in ("step", "status", "rows", "version", "seconds"):
            t.add_column(c)
        for s in result.steps:
            for label, vid in s.versions.items():
                t.add_row(
                    escape(label), s.status, f"{s.rows[label]:,}", vid[:12], f"{s.seconds:.2f}"
                )
            for w in s.warnings:
                err.print(f"[yellow]warning:[/] {escape(s.name)}: {escape(w)}", highlight=False)
        out.print(t)
        # the last step's first output as it is addressed (`p/split.train` for a split)
        last = next(iter(result.steps[-1].versions), "") if result.steps else ""
        out.print(
            f"store: {store}   refs: {spec.name}/<step>   try: tamis show {spec.name}/{last}",
            markup=False,
            highlight=False,
        )

    emit(payload, as_json, render)


@app.command()
@cli_errors
def versions(
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="only this pipeline")] = None,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """List the versions in the store (newest last), with their refs."""
    rows = _store(store).list_versions(pipeline)

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


@app.command()
@cli_errors
def show(
    ref: Annotated[str, typer.Argument(help="version id, id prefix, or ref")],
    rows: Annotated[int, typer.Option("--rows", help="also print the first N rows")] = 0,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Show a version: its manifest, schema and report (or a sweep's result table)."""
    s = _store(store)
    try:
        sweeps = importlib.import_module("tamis.pipelines.sweeps")
        sweep = sweeps.load_sweep_result(s, ref)
    except (ImportError, AttributeError):
        sweep = None
    if sweep is not None:
        emit(sweep, as_json, lambda: out.print(sweeps.render_sweep_table(sweep)))
        return
    manifest = s.manifest(ref)
    payload = dict(manifest)
    if (s.root / "audits").is_dir():  # release decisions recorded by `tamis audit`
        from tamis.privacy.audit.records import audits_for, render_audits

        payload["audits"] = audits_for(s.root, manifest["id"])
    if rows:
        payload["head"] = s.read(manifest["id"]).head(rows).to_dicts()

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
            t.add_row(k, escape(_fmt(v)))
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
            render_audits(payload["audits"], out)
        if rows:
            out.print(s.read(manifest["id"]).head(rows))

    emit(payload, as_json, render)


@app.command()
@cli_errors
def lineage(
    ref: Annotated[str, typer.Argument(help="version id, id prefix, or ref")],
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Show every ancestor of a version and the steps that connect them."""
    data = _store(store).lineage(ref)

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


@app.command()
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
    data = diff_versions(_store(store), a, b, examples=examples, key=key_cols or None)

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


@app.command()
@cli_errors
def export(
    ref: Annotated[str, typer.Argument(help="version id, id prefix, or ref")],
    to: Annotated[Path, typer.Option("--to", help="target file (or new directory for hf)")],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="parquet, csv, tsv, jsonl, json or hf (default: from the suffix of --to; "
            "no suffix means hf)",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace an existing file (atomically)")
    ] = False,
    no_escape_formulas: Annotated[
        bool,
        typer.Option(
            "--no-escape-formulas",
            help="CSV/TSV: keep cells starting with = + - @ tab CR as they are",
        ),
    ] = False,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Write a version out as Parquet, CSV, TSV, JSONL, JSON or a Hugging Face datasets directory.

    Never deletes or replaces a directory; an existing file only with --overwrite; never
    into the store or over a pipeline's source.
    """
    from tamis.pipelines.export import describe, export_version

    data = export_version(
        _store(store),
        ref,
        to,
        fmt,
        overwrite=overwrite,
        escape_formulas=not no_escape_formulas,
    )
    emit(data, as_json, lambda: out.print(describe(data), soft_wrap=True, highlight=False))


@app.command()
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
                    "required" if p["required"] else _fmt(p["default"]),
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


@app.command()
@cli_errors
def demo(
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Build the embedded demo pipeline on a real dataset shipped with statsmodels (offline)."""
    from tamis.pipelines.demo import run_demo

    data = run_demo(_store(store), progress=not as_json and sys.stderr.isatty())

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


@app.callback(invoke_without_command=True)
def main(
    version: Annotated[bool, typer.Option("--version", help="print the version and exit")] = False,
) -> None:
    if version:
        out.print(f"tamis {tamis.__version__}")
        raise typer.Exit(0)


def _register_plugins() -> None:
    """Import every `tamis/cli_<topic>.py` and let it add its commands."""
    for info in sorted(pkgutil.iter_modules(tamis.__path__), key=lambda m: m.name):
        if info.name.startswith("cli_"):
            importlib.import_module(f"tamis.{info.name}").register(app)


_register_plugins()
