"""A sweep's result document from its plan and finished cells: the summary table (paired
bootstrap over test rows and seeds where cells kept predictions, else t over seeds), the version
facts, and a key of everything the table depends on, so a rerun reuses the last table."""

from __future__ import annotations

import json
from typing import Any

from tamis.pipelines.store import Store, now
from tamis.sweeps.cell import cell_dir, limit_threads
from tamis.sweeps.documents import CellResult, SweepResult
from tamis.sweeps.plan import Plan
from tamis.sweeps.resample import resample_cells
from tamis.sweeps.results import sweep_dir
from tamis.sweeps.stats import summary_table
from tamis.sweeps.versions import test_info, version_info, warnings_of


def assemble(
    plan: Plan, results: list[CellResult], *, computed_keys: set[str], store: Store
) -> SweepResult:
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
        "warnings": warnings_of(versions),
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
    plan: Plan, results: list[CellResult], metrics: list[str], figures: list[str]
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
                module_code_hash("tamis.sweeps.resample"),
                module_code_hash("tamis.sweeps.scoring"),
                module_code_hash("tamis.sweeps.predictions"),
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


def _predictions(
    plan: Plan, results: list[CellResult], store: Store
) -> tuple[dict[str, dict[int, Any]], dict[int, str | None]]:
    """Every cell's stored per-example predictions: version -> seed -> CellPredictions."""
    from tamis.sweeps.predictions import CellPredictions

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
