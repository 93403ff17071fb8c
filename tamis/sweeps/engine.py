"""The sweep engine: plan the grid (the data versions come from `builds.py`; `scheduler.py` runs
the cells, resumably, in parallel).

A cell is (data version, recipe + params, seed). Its key is the hash of the data version id, the
test version id, the recipe name and code version, its canonical params and the seed, so a cell
whose inputs did not change is found finished on rerun and skipped. Results live in the store:
`runs/cells/<key>/result.json` per cell, `runs/sweeps/<sweep id>/` per sweep (result.json,
report.html, PNG plots), and rows in the catalog's `runs` table.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from tamis.errors import SpecError
from tamis.pipelines.hashing import hash_json, module_code_hash
from tamis.pipelines.store import Store
from tamis.sweeps.builds import build_seeds, pipeline_spec
from tamis.sweeps.documents import CellTask
from tamis.sweeps.plan import Plan
from tamis.sweeps.recipe import Recipe, validate_recipe_params
from tamis.sweeps.recipes import get_recipe
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


def _checked_params(spec: SweepSpec, recipe: type[Recipe]) -> dict[str, dict[str, Any]]:
    """Each version's recipe params (the sweep's, overridden by the version's), validated; and
    a fixed test set when the recipe needs one."""
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
    return params_by_version


def _cell(
    recipe: type[Recipe],
    params: dict[str, Any],
    version: str,
    seed: int,
    data_id: str,
    test_id: str | None,
    where: tuple[str, int],
) -> CellTask:
    """A cell's identity; its key hashes the data and test version ids, the recipe's name and
    code version, its params and the seed (not the version's name: the same cell under two
    names runs once); `where`: the store root and the thread cap of the process running it."""
    key = hash_json(
        {
            "data": data_id,
            "test": test_id,
            "recipe": recipe.name,
            "recipe_version": [recipe.version, module_code_hash(recipe.__module__)],
            "params": params,
            "seed": seed,
        }
    )
    return {
        "key": key,
        "version": version,
        "seed": seed,
        "recipe": recipe.name,
        "params": params,
        "data_id": data_id,
        "test_id": test_id,
        "store": where[0],
        "threads": where[1],
    }


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
    params_by_version = _checked_params(spec, recipe)
    pspec = pipeline_spec(spec, store)
    t_build = time.perf_counter()
    builds: dict[int, dict[str, Any]] = {}
    if pspec is not None:
        builds = build_seeds(spec, store, pspec, jobs, threads, pool, progress)
    build_seconds = time.perf_counter() - t_build
    empty: dict[str, Any] = {"versions": {}}
    plan = Plan(
        spec=spec,
        recipe=recipe,
        cells=[],
        data_ids={v: {} for v in spec.versions},
        test_ids={},
        figures={v: {} for v in spec.versions},
        build_seconds=build_seconds,
        builds=[{k: v for k, v in b.items() if k != "versions"} for b in builds.values()],
    )
    where = (str(store.root.resolve()), threads)  # the store and thread cap of every cell
    for s in spec.seeds:
        built = builds.get(s, empty)
        test_id = (
            _resolve_entry(spec, spec.test, built, store, "test")[0]
            if spec.test is not None
            else None
        )
        plan.test_ids[s] = test_id
        for name, entry in spec.versions.items():
            vid, report = _resolve_entry(spec, entry, built, store, f"versions.{name}")
            plan.data_ids[name][s] = vid
            if entry.audit:
                _aid, audit_report = _resolve_entry(
                    spec, entry, built, store, f"versions.{name}.audit", target=entry.audit
                )
                for fig, dotted in spec.figures.items():
                    plan.figures[name].setdefault(fig, {})[s] = _dig(audit_report, dotted)
            plan.cells.append(_cell(recipe, params_by_version[name], name, s, vid, test_id, where))
    plan.plan_seconds = time.perf_counter() - t0 - build_seconds
    return plan


__all__ = ["Plan", "plan_sweep"]
