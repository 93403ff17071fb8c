"""Building a sweep's data versions: its pipeline (bundled datasets injected as sources) built
once per seed (pipeline seed = cell seed), in parallel, and remembered in the plan cache so a rerun
with nothing changed skips the no-op rebuild."""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from tamis.errors import SpecError
from tamis.pipelines.store import Store
from tamis.safe_yaml import safe_load_yaml
from tamis.sweeps import plancache
from tamis.sweeps.cell import limit_threads
from tamis.sweeps.scheduler import run_tasks
from tamis.sweeps.spec import SweepSpec, VersionSpec


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


def build_seeds(
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
