"""`tamis sweep NAME_OR_YAML`: run (or resume) an ablation sweep and print its table."""

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    from tamis.cli.render import DEFAULT_STORE, JsonOpt, StoreOpt, cli_errors, emit, err, out

    @app.command()
    @cli_errors
    def sweep(
        name_or_yaml: Annotated[
            str | None, typer.Argument(help="a built-in sweep name or a sweep YAML file")
        ] = None,
        jobs: Annotated[
            int, typer.Option("--jobs", "-j", min=1, help="cells run in parallel processes")
        ] = 1,
        threads: Annotated[
            int, typer.Option("--threads", min=1, help="BLAS/torch threads per cell")
        ] = 1,
        seeds: Annotated[
            str | None, typer.Option("--seeds", help="override seeds: 0,1,2 or 0..4")
        ] = None,
        sets: Annotated[
            list[str] | None,
            typer.Option("--set", help="override a spec field: recipe.params.C=0.1"),
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="recompute finished cells")] = False,
        tracking_uri: Annotated[
            str,
            typer.Option(
                "--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI"
            ),
        ] = "./mlruns",
        no_tracking: Annotated[
            bool, typer.Option("--no-tracking", help="do not log to MLflow")
        ] = False,
        no_report: Annotated[bool, typer.Option("--no-report", help="skip plots and HTML")] = False,
        list_builtin: Annotated[
            bool, typer.Option("--list", help="list the built-in sweeps")
        ] = False,
        store: StoreOpt = DEFAULT_STORE,
        as_json: JsonOpt = False,
    ) -> None:
        """Run an ablation sweep: data versions x recipe x seeds; finished cells are skipped."""
        from rich.markup import escape

        from tamis.pipelines.store import Store
        from tamis.sweeps.run import run_sweep
        from tamis.sweeps.spec import builtin_sweeps, load_sweep, overrides_of
        from tamis.sweeps.table import render_sweep_table

        if list_builtin or name_or_yaml is None:
            rows = builtin_sweeps()
            if name_or_yaml is None and not list_builtin:
                err.print("give a built-in sweep name or a sweep YAML; built-in sweeps:")

            def render_list() -> None:
                for r in rows:
                    out.print(
                        f"[bold]{r['name']}[/] ({r['recipe']}; {', '.join(map(str, r['versions']))}): "
                        f"{r['description']}"
                    )

            emit({"builtin": rows}, as_json, render_list)
            if name_or_yaml is None and not list_builtin:
                raise typer.Exit(2)
            return
        spec = load_sweep(name_or_yaml, overrides_of(seeds, sets))
        # with --json, stray prints of training libraries must not corrupt the JSON document
        guard = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
        with guard:
            result = run_sweep(
                spec,
                Store(store),
                jobs=jobs,
                threads=threads,
                force=force,
                tracking_uri=None if no_tracking else tracking_uri,
                progress=True,
                report=not no_report,
                wait_tracking=False,  # MLflow finishes logging on its own (see tracking.py)
            )

        def render() -> None:
            out.print(render_sweep_table(result))
            for warning in result.get("warnings") or []:
                err.print(f"[yellow]warning:[/] {escape(warning)}")
            t = result["timings"]
            out.print(
                f"{result['computed']} cells run, {result['skipped']} already finished; "
                f"wall {t['wall_seconds']:.1f}s (builds {t['build_seconds']:.1f}s)"
            )
            if result.get("report"):
                out.print(f"report: {result['report']['html']}")
            track = result.get("tracking") or {}
            if track.get("error"):
                err.print(f"[yellow]mlflow tracking failed:[/] {track['error']}")
            elif track:
                run = f" run {track['parent_run_id']}" if track.get("parent_run_id") else ""
                later = " (finishing in the background)" if track.get("pending") else ""
                out.print(f"mlflow: {track['uri']}{run}{later}")
            out.print(f"show again: tamis show sweep/{result['name']} --store {store}")

        emit(result, as_json, render)


__all__ = ["register", "Path"]
