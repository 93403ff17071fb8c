"""Run a sweep end to end, save its result in the store, load it back and render its table.

from tamis.sweeps import run_sweep, load_sweep_result, render_sweep_table
result = run_sweep("label_noise", store=Store(".tamis"), jobs=2)
rich.print(render_sweep_table(load_sweep_result(store, "sweep/label_noise")))
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from tamis.pipelines.store import Store, now, write_json_atomic
from tamis.sweeps.cell import cell_dir, limit_threads, load_cell, warm_up
from tamis.sweeps.engine import Plan, plan_sweep
from tamis.sweeps.scheduler import make_pool, run_cells
from tamis.sweeps.spec import SweepSpec, load_sweep
from tamis.sweeps.stats import resample_cells, summary_table


def sweep_dir(store: Store, sweep_id: str) -> Path:
    return store.runs_dir / "sweeps" / sweep_id


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


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
) -> dict[str, Any]:
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
    pool = None
    if jobs > 1:
        from tamis.sweeps.recipes import get_recipe

        warm = (*get_recipe(spec.recipe.use, file=spec.file).warm, "tamis.pipelines.runner")
        pool = make_pool(jobs - 1, threads, warm)  # this process is the jobs-th worker
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

        def on_done(res: dict[str, Any], cached: bool) -> None:
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
            _record(store, plan, started, "failed", {"error": str(exc)[:2000]}, done)
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
        t_close = time.perf_counter()
        tracker.close(wait=wait_tracking)
        result["tracking"] = {
            "uri": tracker.uri,
            "parent_run_id": tracker.parent_id,
            "error": tracker.error,
            "pending": tracker.pending,
            "outcome": str((out / "tracking.json").resolve()),
            "wait_seconds": round(time.perf_counter() - t_close, 3),
        }
    wall = time.perf_counter() - t0
    cell_s = sum(r["seconds"] for r in results if r["key"] in computed_keys)
    result["timings"] = {
        "wall_seconds": wall,
        "plan_seconds": plan.plan_seconds,
        "build_seconds": plan.build_seconds,
        "cell_seconds_sum": cell_s,
        "stats_seconds": stats_s,
        "report_seconds": report_s,
        "import_seconds": import_s,
        "jobs": jobs,
        "overhead_seconds": wall
        - plan.build_seconds
        - report_s
        - import_s
        - (cell_s if jobs <= 1 else 0.0),
    }
    cleaned: dict[str, Any] = _clean(result)
    write_json_atomic(out / "result.json", cleaned)
    info = {
        "sweep_id": plan.sweep_id,
        "path": str(out / "result.json"),
        "cells": len(results),
        "computed": len(computed_keys),
    }
    _record(store, plan, started, "ok", info, results)
    return cleaned


def _record(
    store: Store,
    plan: Plan,
    started: str,
    status: str,
    info: dict[str, Any],
    results: list[dict[str, Any]],
) -> None:
    """The sweep's catalog row (kind `sweep`) and one row per finished cell, queued for the
    catalog in one file (opening the DuckDB file would cost 15-30 ms; see `Catalog.queue_runs`)."""
    sweep_row = {
        "id": f"sweep-{plan.sweep_id}",
        "kind": "sweep",
        "name": plan.spec.name,
        "started_at": started,
        "finished_at": now(),
        "status": status,
        "info": info,
    }
    rows = [_cell_row(store, plan, res) for res in {r["key"]: r for r in results}.values()]
    store.catalog.queue_runs([*rows, sweep_row])


def _cell_row(store: Store, plan: Plan, res: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"cell-{res['key'][:24]}",
        "kind": "sweep_cell",
        "name": f"{plan.spec.name}/{res['version']}/seed{res['seed']}",
        "started_at": res.get("started_at"),
        "finished_at": res.get("finished_at"),
        "status": "ok",
        "info": {
            "key": res["key"],
            "sweep": plan.sweep_id,
            "data_id": res["data_id"],
            "test_id": res.get("test_id"),
            "recipe": res["recipe"],
            "metrics": res["metrics"],
            "seconds": res.get("seconds"),
            "path": str(cell_dir(store.root, res["key"]) / "result.json"),
        },
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


def _headline(result: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for row in result["table"]:
        if row.get("mean") is not None:
            out[f"{row['version']}.{row['metric']}.mean"] = row["mean"]
        if row.get("delta") is not None:
            out[f"{row['version']}.{row['metric']}.delta"] = row["delta"]
    return out


def assemble(
    plan: Plan, results: list[dict[str, Any]], *, computed_keys: set[str], store: Store
) -> dict[str, Any]:
    spec = plan.spec
    # the spec's list, else the recipe's headline figures, else every figure the cells report
    metrics = list(spec.metrics or plan.recipe.metrics)
    if not metrics:
        metrics = sorted({k for r in results for k in r["metrics"]})
    figures = list(spec.figures)
    per_seed: dict[str, dict[str, dict[int, float | None]]] = {v: {} for v in spec.versions}
    for r in results:
        for m in metrics:
            per_seed[r["version"]].setdefault(m, {})[int(r["seed"])] = r["metrics"].get(m)
    for v, figs in plan.figures.items():
        for f, vals in figs.items():
            per_seed[v][f] = dict(vals)
    stats_key = _stats_key(plan, results, metrics, figures)
    prev = _previous(store, plan.sweep_id, stats_key)
    table = prev.get("table")
    if table is None:  # not computed before for exactly these cells, settings and code
        cells, test_of_seed = _predictions(plan, results, store)
        # one thread: BLAS threads spinning on a busy machine made the small products 15x slower
        with limit_threads(1):
            resampled = resample_cells(
                cells,
                test_of_seed,
                metrics,
                baseline=spec.baseline,
                n_boot=spec.n_boot,
                seed=spec.seed,
            )
        table = summary_table(
            per_seed,
            metrics=[*metrics, *figures],
            baseline=spec.baseline,
            n_boot=spec.n_boot,
            seed=spec.seed,
            resampled=resampled,
        )
    versions = prev.get("versions") or {
        v: {"ids": {str(s): i for s, i in ids.items()}, **version_info(store, plan, v, results)}
        for v, ids in plan.data_ids.items()
    }
    return {
        "sweep_id": plan.sweep_id,
        "name": spec.name,
        "description": spec.description,
        "recipe": {"use": spec.recipe.use, "params": spec.recipe.params},
        "baseline": spec.baseline,
        "seeds": spec.seeds,
        "metrics": metrics,
        "figures": figures,
        "tradeoff": spec.tradeoff.model_dump() if spec.tradeoff else None,
        "has_curves": plan.recipe.has_curves,
        "versions": versions,
        "test": test_info(results),
        "warnings": _warnings(versions),
        "n_boot": spec.n_boot,
        "boot_seed": spec.seed,
        "test_ids": {str(s): i for s, i in plan.test_ids.items()},
        "table": table,
        "stats_key": stats_key,
        "cells": [
            {
                k: r.get(k)
                for k in (
                    "key",
                    "version",
                    "seed",
                    "data_id",
                    "metrics",
                    "curves",
                    "seconds",
                    "fit_seconds",
                    "info",
                )
            }
            for r in results
        ],
        "per_seed_figures": {
            v: {f: {str(s): x for s, x in vals.items()} for f, vals in figs.items()}
            for v, figs in plan.figures.items()
        },
        "computed": len(computed_keys),
        "skipped": len(results) - len(computed_keys),
        "builds": plan.builds,
        "created_at": now(),
        "store": str(store.root),
    }


def _stats_key(
    plan: Plan, results: list[dict[str, Any]], metrics: list[str], figures: list[str]
) -> str:
    """What the table depends on: the cells (their keys cover data, test, recipe and seed),
    the bootstrap settings, the audit figures and the code of the statistics."""
    from tamis.pipelines.hashing import hash_json, module_code_hash

    spec = plan.spec
    return hash_json(
        {
            "cells": sorted(r["key"] for r in results),
            "metrics": metrics,
            "figures": figures,
            "figure_values": {
                v: {f: {str(s): x for s, x in vals.items()} for f, vals in figs.items()}
                for v, figs in plan.figures.items()
            },
            "baseline": spec.baseline,
            "n_boot": spec.n_boot,
            "seed": spec.seed,
            "versions": list(spec.versions),
            "code": [
                module_code_hash("tamis.sweeps.stats"),
                module_code_hash("tamis.sweeps.scoring"),
            ],
        }
    )


def _previous(store: Store, sweep_id: str, stats_key: str) -> dict[str, Any]:
    """The table and version facts of the last run of this sweep when nothing they depend on
    changed: a rerun does not resample again (same cells, seed and code give the same numbers)
    nor walk the lineage again. Empty otherwise."""
    path = sweep_dir(store, sweep_id) / "result.json"
    try:
        with open(path) as fh:
            prev = json.load(fh)
    except (OSError, ValueError):
        return {}
    if prev.get("stats_key") != stats_key or not isinstance(prev.get("table"), list):
        return {}
    return {"table": prev["table"], "versions": prev.get("versions")}


def test_info(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Rows and class balance of the fixed test set (as the first cell scored it)."""
    for r in sorted(results, key=lambda r: (int(r["seed"]), r["version"])):
        info = r.get("info") or {}
        if "rows_test" in info:
            counts = info.get("class_counts_test") or {}
            total = sum(counts.values()) or 1
            return {
                "rows": info["rows_test"],
                "class_balance": {k: v / total for k, v in counts.items()},
                "positive": info.get("positive"),
                "null_labels_dropped": (info.get("null_labels_dropped") or {}).get("test", 0),
            }
    return None


def _predictions(
    plan: Plan, results: list[dict[str, Any]], store: Store
) -> tuple[dict[str, dict[int, Any]], dict[int, str | None]]:
    """Every cell's stored per-example predictions: version -> seed -> CellPredictions."""
    from tamis.sweeps.scoring import CellPredictions

    cells: dict[str, dict[int, Any]] = {}
    for r in results:
        meta = r.get("predictions")
        if not meta:
            continue
        directory = cell_dir(store.root, r["key"])
        if not (directory / meta.get("file", "predictions.parquet")).is_file():
            continue
        cells.setdefault(r["version"], {})[int(r["seed"])] = CellPredictions.load(directory, meta)
    return cells, dict(plan.test_ids)


def _chain(store: Store, version_id: str) -> list[str]:
    """The steps that made a version, source first, along its primary inputs (from lineage)."""
    try:
        lin = store.lineage(version_id)
    except Exception:  # a version outside the catalog (e.g. a store being repaired)
        return []
    nodes = {n["id"]: n for n in lin["nodes"]}
    parents: dict[str, list[dict[str, Any]]] = {}
    for e in lin["edges"]:
        parents.setdefault(e["child"], []).append(e)
    chain: list[str] = []
    node: str | None = version_id
    seen: set[str] = set()
    while node is not None and node not in seen:
        seen.add(node)
        info = nodes.get(node, {})
        kind = str(info.get("step_type") or "")
        name = str(info.get("name") or node[:12]).rsplit("/", 1)[-1]
        chain.append(f"{name} (source)" if kind in ("", "source") else kind)
        ups = sorted(parents.get(node, []), key=lambda e: (e["role"] != "input", e["parent"]))
        node = ups[0]["parent"] if ups else None
    return chain[::-1]


def version_info(
    store: Store, plan: Plan, version: str, results: list[dict[str, Any]]
) -> dict[str, Any]:
    """What a reader needs to compare a version: rows, class balance, null labels dropped (from
    its cells) and the chain of steps that made it (from the store's lineage)."""
    ids = plan.data_ids.get(version, {})
    first = ids[min(ids)] if ids else None
    info: dict[str, Any] = {"steps": _chain(store, first) if first else []}
    mine = sorted((r for r in results if r["version"] == version), key=lambda r: int(r["seed"]))
    rows = [r["info"]["rows_train"] for r in mine if "rows_train" in (r.get("info") or {})]
    if rows:
        info["rows"] = {"min": min(rows), "max": max(rows), "mean": sum(rows) / len(rows)}
    counts: dict[str, int] = {}
    positive = None
    nulls = {"train": 0, "test": 0}
    for r in mine:
        ri = r.get("info") or {}
        for label, n in (ri.get("class_counts_train") or {}).items():
            counts[label] = counts.get(label, 0) + int(n)
        positive = ri.get("positive", positive)
        for side in nulls:
            nulls[side] += int((ri.get("null_labels_dropped") or {}).get(side, 0))
    if counts:
        total = sum(counts.values())
        info["class_balance"] = {k: v / total for k, v in sorted(counts.items())}
        info["positive"] = positive
    if mine and any(r.get("info", {}).get("null_labels_dropped") for r in mine):
        info["null_labels_dropped"] = nulls
    return info


def _warnings(versions: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for v, info in versions.items():
        nulls = info.get("null_labels_dropped") or {}
        if nulls.get("train") or nulls.get("test"):
            out.append(
                f"version '{v}': rows with a null label were dropped (train {nulls['train']}, "
                f"test {nulls['test']}, summed over seeds)"
            )
    return out


def load_sweep_result(store: Store, ref: str) -> dict[str, Any] | None:
    """A saved sweep by id, id prefix, `sweep/NAME` or NAME (latest run); None if none matches."""
    if not store.catalog.path.exists() and not store.catalog.pending_dir.exists():
        return None
    ref = ref.strip()
    name = ref.split("/", 1)[1] if ref.startswith("sweep/") else ref
    sweep_id = ref[len("sweep-") :] if ref.startswith("sweep-") else ref
    rows = store.catalog.query(
        "SELECT id, info_json FROM runs WHERE kind = 'sweep' AND status = 'ok' AND "
        "(name = ? OR id = ? OR id LIKE ?) ORDER BY finished_at DESC",
        [name, f"sweep-{sweep_id}", f"sweep-{sweep_id}%" if len(sweep_id) >= 4 else "\x00"],
    )
    for row in rows:
        path = Path(json.loads(row["info_json"] or "{}").get("path", ""))
        if path.is_file():
            with open(path) as fh:
                data: dict[str, Any] = json.load(fh)
            _merge_tracking(data, path.parent / "tracking.json")
            return data
    return None


def _merge_tracking(data: dict[str, Any], outcome: Path) -> None:
    """What the MLflow logging process reported after the sweep returned (it may outlive it)."""
    track = data.get("tracking")
    if not track or not track.get("pending") or not outcome.is_file():
        return
    try:
        said = json.loads(outcome.read_text())
    except (OSError, ValueError):
        return
    track.update(parent_run_id=said.get("parent_id"), error=said.get("error"), pending=False)

