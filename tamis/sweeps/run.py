"""Run a sweep end to end: plan and build, run the unfinished cells, compute the statistics,
write the report, log to MLflow and save the result in the store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tamis.pipelines.store import Store, now
from tamis.sweeps.assemble import assemble
from tamis.sweeps.cell import load_cell, warm_up
from tamis.sweeps.documents import CellResult, SweepResult
from tamis.sweeps.engine import plan_sweep
from tamis.sweeps.plan import Plan
from tamis.sweeps.results import record_sweep, save_result, sweep_dir
from tamis.sweeps.scheduler import make_pool, run_cells
from tamis.sweeps.spec import SweepSpec, load_sweep


def _progress(enabled: bool, total: int) -> Any:
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )


def run_sweep(
    spec_or_name: SweepSpec | str | Path,
    store: Store | None = None,
    *,
    jobs: int = 1,
    threads: int = 1,
    force: bool = False,
    tracking_uri: str | None = None,
    progress: bool = False,
    report: bool = True,
    overrides: dict[str, Any] | None = None,
    wait_tracking: bool = True,
) -> SweepResult:
    """Plan, build, run the unfinished cells, compute the statistics and save everything.

    `tracking_uri=None` skips MLflow; the CLI passes `./mlruns` by default. `wait_tracking=False`
    returns without waiting for MLflow to log the last runs (see `tracking`). `threads` caps the
    BLAS/OpenMP/torch threads of each cell and build (parallelism comes from `jobs` processes:
    `jobs - 1` workers plus this one).
    """
    t0 = time.perf_counter()
    spec = (
        spec_or_name if isinstance(spec_or_name, SweepSpec) else load_sweep(spec_or_name, overrides)
    )
    store = store or Store()
    started = now()
    bar = _progress(progress, len(spec.versions) * len(spec.seeds))
    task: Any = None
    if bar is not None:
        bar.start()
        task = bar.add_task("building data versions", total=len(spec.versions) * len(spec.seeds))
    tracker = _tracker(tracking_uri, wait_tracking)
    pool = _pool(spec, jobs, threads)
    plan: Plan | None = None
    try:
        plan = plan_sweep(
            spec,
            store,
            jobs=jobs,
            threads=threads,
            pool=pool,
            progress=(lambda m: bar.update(task, description=m)) if bar else None,
        )
        if tracker is not None:
            tracker.start(*_tracking_params(plan))

        def on_done(res: CellResult, cached: bool) -> None:
            if tracker is not None:
                tracker.cell(res, cached)
            if bar is not None:
                state = "cached" if cached else f"{res['seconds']:.1f}s"
                bar.update(
                    task, advance=1, description=f"{res['version']} seed {res['seed']} ({state})"
                )

        t_import = time.perf_counter()
        # the libraries the cells need, timed apart (a loop pays it too); run_cells' own
        # warm_up (it must precede the thread caps) then finds them imported
        warm_up(plan.recipe.warm)
        import_s = time.perf_counter() - t_import
        results, computed_keys = run_cells(plan, jobs=jobs, force=force, on_done=on_done, pool=pool)
    except BaseException as exc:
        if tracker is not None:
            outcome = (
                (sweep_dir(store, plan.sweep_id) / "tracking.json").resolve() if plan else None
            )
            tracker.finish({}, status="FAILED", outcome=outcome)
            tracker.close(wait=wait_tracking)
        if plan is not None:
            done = [r for c in plan.cells if (r := load_cell(store.root, c["key"]))]
            record_sweep(store, plan, started, "failed", {"error": str(exc)[:2000]}, done)
        raise
    finally:
        if bar is not None:
            bar.stop()
        if pool is not None:
            # workers exit on their own (torch and friends take ~1 s to tear down): not waited for
            pool.shutdown(wait=False, cancel_futures=True)
    out = sweep_dir(store, plan.sweep_id)
    t_stats = time.perf_counter()
    result = assemble(plan, results, computed_keys=computed_keys, store=store)
    stats_s = time.perf_counter() - t_stats
    out.mkdir(parents=True, exist_ok=True)
    if tracker is not None:  # before the report: MLflow logs while the plots are drawn
        tracker.finish(_headline(result), outcome=(out / "tracking.json").resolve())
    report_s = 0.0
    if report:
        from tamis.sweeps.report import write_report

        t_rep = time.perf_counter()
        result["report"] = write_report(result, out)
        report_s = time.perf_counter() - t_rep
    if tracker is not None:
        result["tracking"] = _close_tracker(tracker, wait_tracking, out)
    cell_s = sum(r.get("seconds", 0.0) for r in results if r["key"] in computed_keys)
    seconds = {"stats": stats_s, "report": report_s, "import": import_s, "cells": cell_s}
    result["timings"] = _timings(plan, time.perf_counter() - t0, jobs, seconds)
    cleaned = save_result(out, result)
    info = {
        "sweep_id": plan.sweep_id,
        "path": str(out / "result.json"),
        "cells": len(results),
        "computed": len(computed_keys),
    }
    record_sweep(store, plan, started, "ok", info, results)
    return cleaned


def _pool(spec: SweepSpec, jobs: int, threads: int) -> Any:
    """`jobs - 1` worker processes (this process is the jobs-th), or None for one job."""
    if jobs <= 1:
        return None
    from tamis.sweeps.recipes import get_recipe

    warm = (*get_recipe(spec.recipe.use, file=spec.file).warm, "tamis.pipelines.runner")
    return make_pool(jobs - 1, threads, warm)


def _timings(plan: Plan, wall: float, jobs: int, seconds: dict[str, float]) -> dict[str, Any]:
    """Where the sweep's time went; overhead is what neither builds, cells, imports nor the
    report took (cells count only when they ran in this process alone)."""
    cell_s = seconds["cells"]
    return {
        "wall_seconds": wall,
        "plan_seconds": plan.plan_seconds,
        "build_seconds": plan.build_seconds,
        "cell_seconds_sum": cell_s,
        "stats_seconds": seconds["stats"],
        "report_seconds": seconds["report"],
        "import_seconds": seconds["import"],
        "jobs": jobs,
        "overhead_seconds": wall
        - plan.build_seconds
        - seconds["report"]
        - seconds["import"]
        - (cell_s if jobs <= 1 else 0.0),
    }


def _close_tracker(tracker: Any, wait: bool, out: Path) -> dict[str, Any]:
    """Close the MLflow logging process (waited for or not); what the result says of it."""
    t_close = time.perf_counter()
    tracker.close(wait=wait)
    return {
        "uri": tracker.uri,
        "parent_run_id": tracker.parent_id,
        "error": tracker.error,
        "pending": tracker.pending,
        "outcome": str((out / "tracking.json").resolve()),
        "wait_seconds": round(time.perf_counter() - t_close, 3),
    }


def _tracker(uri: str | None, wait: bool) -> Any:
    if uri is None:
        return None
    from tamis.sweeps import tracking

    if not tracking.available():
        import warnings

        warnings.warn(
            "mlflow is not installed: sweep not tracked (pip install 'tamis[tracking]')",
            stacklevel=3,
        )
        return None
    # waited for: MLflow's import overlaps planning and cells; not: see Tracker's `defer`
    return tracking.Tracker(uri, defer=0.0 if wait else 10.0)


def _tracking_params(plan: Plan) -> tuple[str, str, dict[str, Any]]:
    spec = plan.spec
    params: dict[str, Any] = {
        "sweep_id": plan.sweep_id,
        "recipe": spec.recipe.use,
        "baseline": spec.baseline,
        "seeds": spec.seeds,
        "versions": list(spec.versions),
    }
    for name, ids in plan.data_ids.items():
        for seed, vid in ids.items():
            params[f"data.{name}.seed{seed}"] = vid
    return f"tamis-sweep-{spec.name}", f"{spec.name}@{plan.sweep_id[:8]}", params


def _headline(result: SweepResult) -> dict[str, float]:
    out: dict[str, float] = {}
    for row in result["table"]:
        mean, delta = row.get("mean"), row.get("delta")
        if mean is not None:
            out[f"{row['version']}.{row['metric']}.mean"] = mean
        if delta is not None:
            out[f"{row['version']}.{row['metric']}.delta"] = delta
    return out
