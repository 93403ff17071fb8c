"""`tamis build PIPELINE [STEPS]` builds a pipeline into the store; `tamis demo` builds the
embedded demo pipeline."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tamis.cli.render import (
    DEFAULT_STORE,
    JsonOpt,
    StoreOpt,
    cli_errors,
    emit,
    err,
    open_store,
    out,
)

StepsArg = Annotated[
    list[str] | None, typer.Argument(help="build only these steps (and what they need)")
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="recompute the named STEPS, or every step if none")
]
SourcesUnderOpt = Annotated[
    Path | None,
    typer.Option(
        "--sources-under",
        help="refuse sources outside DIR (for pipeline files received from someone else)",
    ),
]
MemoryLimitOpt = Annotated[
    str | None,
    typer.Option(
        "--memory-limit",
        metavar="SIZE",
        help="memory the build may use, e.g. 1.5GB or 800MiB (default: half of this machine's "
        "memory); batches and spill buckets are sized from it",
    ),
]
EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        metavar="local|ray",
        help="local: the bounded engine on this machine (default); ray: Ray Data (pip install "
        "'tamis\\[ray]'), a loopback instance started for the build or the cluster at --address",
    ),
]
AddressOpt = Annotated[
    str | None,
    typer.Option("--address", metavar="ADDR", help="with --engine ray: join this Ray cluster"),
]


def _engine_name(engine: str | None) -> str | None:
    from tamis.errors import SpecError
    from tamis.pipelines.engines import ENGINES

    if engine is not None and engine not in ENGINES:
        raise SpecError(
            f"unknown engine {engine!r}", field="--engine", fix=f"use {' or '.join(ENGINES)}"
        )
    return engine


def memory_limit_line(limit: int, given: bool) -> str:
    """The line a build starts with, e.g. `memory limit 12.6 GB (half of this machine's
    memory; --memory-limit to change)`."""
    from tamis.pipelines.engines.memory import format_size

    why = "--memory-limit" if given else "half of this machine's memory; --memory-limit to change"
    return f"memory limit {format_size(limit)} ({why})"


@cli_errors
def build(
    pipeline: Annotated[Path, typer.Argument(help="pipeline YAML file")],
    steps: StepsArg = None,
    force: ForceOpt = False,
    seed: Annotated[int | None, typer.Option("--seed", help="override the pipeline seed")] = None,
    sources_under: SourcesUnderOpt = None,
    memory_limit: MemoryLimitOpt = None,
    engine: EngineOpt = None,
    address: AddressOpt = None,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Build a pipeline: every step's output becomes a cached, immutable version.

    Steps run within a memory limit: map steps stream, keyed steps spill buckets to the store's
    tmp dir, and a step that needs its whole input in memory is refused before it starts when
    that input cannot fit (the error says how to fix it)."""
    from tamis.pipelines.engines.memory import default_memory_limit, parse_size
    from tamis.pipelines.runner import build as run_build
    from tamis.pipelines.sources import source_paths
    from tamis.pipelines.spec import load_pipeline

    limit = parse_size(memory_limit) if memory_limit is not None else default_memory_limit()
    spec = load_pipeline(pipeline)
    err.print(memory_limit_line(limit, memory_limit is not None), markup=False, highlight=False)
    for name, path in source_paths(spec, under=sources_under).items():
        err.print(f"source {name}: {path}", markup=False, highlight=False, soft_wrap=True)
    if seed is not None:
        spec.seed = seed
    forced: bool | list[str] = (list(steps) if steps else True) if force else False
    result = run_build(
        spec,
        open_store(store),
        force=forced,
        targets=steps or None,
        progress=not as_json and sys.stderr.isatty(),
        memory_limit=limit,
        engine=_engine_name(engine),
        address=address,
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
