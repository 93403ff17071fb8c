"""The sweep engine: plan the grid, build data versions, run cells (resumably, in parallel).

A cell is (data version, recipe + params, seed). Its key is the hash of the data version id, the
test version id, the recipe name and code version, its canonical params and the seed, so a cell
whose inputs did not change is found finished on rerun and skipped. Results live in the store:
`runs/cells/<key>/result.json` per cell, `runs/sweeps/<sweep id>/` per sweep (result.json,
report.html, PNG plots), and rows in the catalog's `runs` table.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from tamis.errors import SpecError
from tamis.pipelines.hashing import hash_json, module_code_hash
from tamis.pipelines.store import Store, now
from tamis.safe_yaml import safe_load_yaml
from tamis.sweeps import plancache
from tamis.sweeps.cell import limit_threads
from tamis.sweeps.documents import CellTask
from tamis.sweeps.plan import Plan
from tamis.sweeps.recipe import validate_recipe_params
from tamis.sweeps.recipes import get_recipe
from tamis.sweeps.scheduler import run_tasks
from tamis.sweeps.spec import SweepSpec, VersionSpec


def _dig(report: Any, dotted: str) -> float | None:
    """`a.b.c` into nested dicts/lists; a key that itself contains dots matches as a whole."""
    node: Any = report
    if isinstance(node, dict) and dotted in node:
        node = node[dotted]
    elif "." in dotted:
        head, rest = dotted.split(".", 1)
        if isinstance(node, dict) and head in node:
            return _dig(node[head], rest)
        if isinstance(node, list) and head.isdigit() and int(head) < len(node):
            return _dig(node[int(head)], rest)
        return None
    elif isinstance(node, list) and dotted.isdigit() and int(dotted) < len(node):
        node = node[int(dotted)]
    else:
        return None
    if isinstance(node, dict) and "value" in node:
        node = node["value"]
    try:
        return float(node)
    except (TypeError, ValueError):
        return None


def pipeline_spec(spec: SweepSpec, store: Store) -> Any:
    """The sweep's pipeline as a PipelineSpec, with bundled datasets injected as sources."""

    from tamis.pipelines.spec import parse_pipeline
    from tamis.sweeps.datasets import materialize

    if spec.pipeline is None:
        return None
    base_dir = spec.base_dir
    file = spec.file
    if isinstance(spec.pipeline, str):
        path = (Path(spec.base_dir) / spec.pipeline).resolve()
        if not path.exists():
            raise SpecError(
                "pipeline file not found",
                file=spec.file,
                field="pipeline",
                fix="the path is relative to the sweep YAML",
            )
        data = safe_load_yaml(path.read_text(), file=str(path))
        base_dir, file = str(path.parent), str(path)
    else:
        data = dict(spec.pipeline)
        data.setdefault("name", spec.name)
    sources = dict(data.get("sources") or {})
    for name, ds in spec.datasets.items():
        if name not in sources:
            path = materialize(ds.loader, ds.options, store.runs_dir / "sweep-data")
            sources[name] = {"path": str(path.resolve()), "format": "parquet"}
    data["sources"] = sources
    return parse_pipeline(data, file=file, base_dir=base_dir)


def _needed_steps(spec: SweepSpec) -> list[str]:
    names: list[str] = []
    entries: list[VersionSpec] = [*spec.versions.values(), *([spec.test] if spec.test else [])]
    for v in entries:
        for target in (v.step, v.audit):
            if target and not target.startswith("@"):
                base = target.split(".", 1)[0]
                if base not in names:
                    names.append(base)
    return names


def build_seed(
    store_root: str, pspec: Any, seed: int, targets: list[str], threads: int = 1
) -> dict[str, Any]:
    """Build the sweep's pipeline for one seed; returns label -> (id, report) of every version."""
    from tamis.pipelines.runner import build

    store = Store(store_root)
    t0 = time.perf_counter()
    seeded = pspec.model_copy(update={"seed": seed, "name": f"{pspec.name}-seed{seed}"})
    with limit_threads(threads):
        res = build(seeded, store, targets=targets or None)
    return {
        "seed": seed,
        "seconds": time.perf_counter() - t0,
        "steps": {s.name: s.status for s in res.steps},
        "versions": {
            k: {"id": m["id"], "report": m.get("report") or {}} for k, m in res.versions.items()
        },
    }


def _resolve_entry(
    spec: SweepSpec,
    entry: VersionSpec,
    built: dict[str, Any],
    store: Store,
    what: str,
    target: str | None = None,
) -> tuple[str, dict[str, Any]]:
    name = target if target is not None else (entry.step or "")
    if target is None and entry.ref:
        vid = store.resolve(entry.ref)
        return vid, store.manifest_by_id(vid).get("report") or {}
    if name.startswith("@"):
        vid = store.resolve(name[1:])
        return vid, store.manifest_by_id(vid).get("report") or {}
    if name not in built["versions"]:
        raise SpecError(
            f"{what} names '{name}', which the pipeline does not produce",
            file=spec.file,
            field=what,
            fix=f"pipeline versions: {', '.join(sorted(built['versions']))}",
        )
    v = built["versions"][name]
    return str(v["id"]), v["report"]


def _build_seeds(
    spec: SweepSpec,
    store: Store,
    pspec: Any,
    jobs: int,
    threads: int,
    pool: ProcessPoolExecutor | None,
    progress: Any,
) -> dict[int, dict[str, Any]]:
    """Every seed's build: from the plan cache when nothing changed, else built (in parallel)."""
    targets = _needed_steps(spec)
    builds: dict[int, dict[str, Any]] = {}
    keys = {s: plancache.plan_key(pspec, s, targets) for s in spec.seeds}
    for s in spec.seeds:
        cached = plancache.load_build(store, keys[s])
        if cached is not None:
            builds[s] = cached
    todo = [s for s in spec.seeds if s not in builds]
    tasks = [(build_seed, (str(store.root), pspec, s, targets, threads)) for s in todo]
    errors: list[BaseException] = []

    def done(i: int, out: dict[str, Any]) -> None:
        builds[out["seed"]] = out
        plancache.save_build(store, keys[out["seed"]], out)
        if progress:
            progress(f"built seed {out['seed']}")

    def failed(i: int, exc: BaseException) -> None:
        errors.append(exc)

    run_tasks(
        tasks,
        pool=pool if jobs > 1 else None,
        workers=jobs - 1,
        local=lambda task: task[0](*task[1]),
        on_result=done,
        on_error=failed,
    )
    if errors:
        raise errors[0]
    return builds


def plan_sweep(
    spec: SweepSpec,
    store: Store,
    *,
    jobs: int = 1,
    threads: int = 1,
    progress: Any = None,
    pool: ProcessPoolExecutor | None = None,
) -> Plan:
    t0 = time.perf_counter()
    recipe = get_recipe(spec.recipe.use, file=spec.file)
    params_by_version = {
        name: validate_recipe_params(
            recipe, {**spec.recipe.params, **v.params}, file=spec.file, where=f"versions.{name}"
        ).model_dump(mode="json")
        for name, v in spec.versions.items()
    }
    if recipe.needs_test and spec.test is None:
        raise SpecError(
            f"recipe '{recipe.name}' needs a fixed test set",
            file=spec.file,
            field="test",
            fix="add `test: STEP` or `test: '@REF'`",
        )
    pspec = pipeline_spec(spec, store)
    t_build = time.perf_counter()
    builds: dict[int, dict[str, Any]] = {}
    if pspec is not None:
        builds = _build_seeds(spec, store, pspec, jobs, threads, pool, progress)
    build_seconds = time.perf_counter() - t_build
    empty: dict[str, Any] = {"versions": {}}
    data_ids: dict[str, dict[int, str]] = {v: {} for v in spec.versions}
    figures: dict[str, dict[str, dict[int, float | None]]] = {v: {} for v in spec.versions}
    test_ids: dict[int, str | None] = {}
    cells: list[CellTask] = []
    for s in spec.seeds:
        built = builds.get(s, empty)
        test_id = (
            _resolve_entry(spec, spec.test, built, store, "test")[0]
            if spec.test is not None
            else None
        )
        test_ids[s] = test_id
        for name, entry in spec.versions.items():
            vid, report = _resolve_entry(spec, entry, built, store, f"versions.{name}")
            data_ids[name][s] = vid
            if entry.audit:
                _aid, audit_report = _resolve_entry(
                    spec, entry, built, store, f"versions.{name}.audit", target=entry.audit
                )
                for fig, dotted in spec.figures.items():
                    figures[name].setdefault(fig, {})[s] = _dig(audit_report, dotted)
            params = params_by_version[name]
            key = hash_json(
                {
                    "data": vid,
                    "test": test_id,
                    "recipe": recipe.name,
                    "recipe_version": [recipe.version, module_code_hash(recipe.__module__)],
                    "params": params,
                    "seed": s,
                }
            )
            cells.append(
                {
                    "key": key,
                    "version": name,
                    "seed": s,
                    "recipe": recipe.name,
                    "params": params,
                    "data_id": vid,
                    "test_id": test_id,
                    "store": str(store.root.resolve()),
                    "threads": threads,
                }
            )
    sweep_id = hash_json(
        {
            "name": spec.name,
            "cells": sorted(c["key"] for c in cells),
            "baseline": spec.baseline,
            "figures": spec.figures,
        }
    )[:20]
    return Plan(
        spec=spec,
        recipe=recipe,
        cells=cells,
        data_ids=data_ids,
        test_ids=test_ids,
        figures=figures,
        sweep_id=sweep_id,
        build_seconds=build_seconds,
        plan_seconds=time.perf_counter() - t0 - build_seconds,
        builds=[{k: v for k, v in b.items() if k != "versions"} for b in builds.values()],
    )


__all__ = ["Plan", "plan_sweep", "build_seed", "pipeline_spec", "now"]
