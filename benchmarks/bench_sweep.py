"""Benchmark of the sweep engine (not a test; nothing here gates CI).

1. Overhead. Baseline: a plain Python loop that reads each cell's data version and test version
   from the store and calls the same recipe (what a user would write by hand), with the same
   thread cap and glibc heap setting the sweep uses. tamis: the whole `run_sweep` on the same grid
   (spec parsing, the data-version check, scheduling, cell records, statistics, catalog rows;
   cells forced to recompute, report off): without MLflow, with MLflow as `tamis sweep` runs it
   (the logging process finishes in the background) and with the sweep waiting for MLflow. Same
   process, after a warm-up cell so imports are warm. Overhead = sweep wall / loop - 1.
2. Parallel cells. The shipped label_noise grid (5 seeds x 3 versions) with gradient boosting with `jobs=1` and
   `jobs=2` on fresh stores whose data versions are already built: wall-time ratio (target <= 0.6
   on two cores).

    .venv/bin/python benchmarks/bench_sweep.py [--sweep label_noise] [--seeds 5] [--skip-parallel]

Prints one JSON line per part with both times, the ratio, peak memory (RSS) and a quality figure.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit  # noqa: E402


def peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024, 1)


def overhead(name: str, seeds: int, root: Path, repeats: int = 3) -> dict[str, Any]:
    import polars as pl

    from tamis.pipelines.store import Store
    from tamis.sweeps.cell import limit_threads, tune_malloc
    from tamis.sweeps.engine import plan_sweep
    from tamis.sweeps.recipes import get_recipe
    from tamis.sweeps.run import run_sweep
    from tamis.sweeps.spec import load_sweep

    spec = load_sweep(name, {"seeds": list(range(seeds))})
    store = Store(root / f"overhead-{name}")
    t0 = time.perf_counter()
    plan = plan_sweep(spec, store)  # builds the data versions once (not part of either timing)
    build_s = time.perf_counter() - t0
    # baseline: the hand-written loop over the same cells
    recipe = get_recipe(spec.recipe.use)()

    def inputs(cell: dict[str, Any]) -> tuple[Any, Any, Any]:
        train = pl.read_parquet(store.data_path(cell["data_id"]))
        test = pl.read_parquet(store.data_path(cell["test_id"])) if cell["test_id"] else None
        return train, test, recipe.Params.model_validate(cell["params"])

    tune_malloc()  # what the sweep does to its process, so both sides run with it
    with limit_threads(1):  # warm-up: imports happen once, outside both timings
        recipe.run(*inputs(plan.cells[0]), plan.cells[0]["seed"], root / "warm")

    def loop() -> tuple[float, list[Any]]:
        t0 = time.perf_counter()
        metrics = []
        with limit_threads(1):
            for cell in plan.cells:
                train = pl.read_parquet(store.data_path(cell["data_id"]))
                test = (
                    pl.read_parquet(store.data_path(cell["test_id"])) if cell["test_id"] else None
                )
                params = recipe.Params.model_validate(cell["params"])
                res = recipe.run(train, test, params, cell["seed"], root / "scratch")
                metrics.append(res.metrics)
        return time.perf_counter() - t0, metrics

    def timed(**kw: Any) -> tuple[float, dict[str, Any]]:
        t0 = time.perf_counter()
        out = run_sweep(
            load_sweep(name, {"seeds": list(range(seeds))}), store, force=True, report=False, **kw
        )
        return time.perf_counter() - t0, out

    # paired and interleaved: each sweep run right after its own loop run, ratios per pair, then
    # medians (the machine's speed drifts by 20-30% over a minute here)
    times: dict[str, list[float]] = {"loop": [], "plain": [], "bg": [], "waited": []}
    ratios: dict[str, list[float]] = {"plain": [], "bg": [], "waited": []}
    uri = str(root / f"mlruns-{name}")
    for rep in range(repeats):
        for kind, kw in (
            ("plain", {"tracking_uri": None}),
            ("bg", {"tracking_uri": uri, "wait_tracking": False}),
            ("waited", {"tracking_uri": uri, "wait_tracking": True}),
        ):
            if rep % 2 == 0:  # alternate which goes first: drift cancels in the median
                loop_t, base_metrics = loop()
                sweep_t, out = timed(**kw)
            else:
                sweep_t, out = timed(**kw)
                if kind == "bg":
                    time.sleep(2.5)  # the logging process ends before the loop is timed
                loop_t, base_metrics = loop()
            times["loop"].append(loop_t)
            times[kind].append(sweep_t)
            ratios[kind].append(sweep_t / loop_t)
            if kind == "plain":
                plain = out
            elif kind == "bg":
                bg = out
                time.sleep(2.5)  # the logging process ends before the next timing
            else:
                waited = out
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = {k: statistics.median(v) for k, v in ratios.items()}
    loop_s, plain_s, bg_s, waited_s = med["loop"], med["plain"], med["bg"], med["waited"]
    plain_cells = plain["timings"]["cell_seconds_sum"]
    same = [c["metrics"] for c in plain["cells"]] == base_metrics
    first = "f1" if "f1" in plain["metrics"] else plain["metrics"][0]
    quality = {r["version"]: round(r["mean"], 4) for r in plain["table"] if r["metric"] == first}
    return {
        "bench": f"sweep_overhead[{name}]",
        "cells": len(plan.cells),
        "baseline_loop_s": round(loop_s, 3),
        "tamis_sweep_s": round(plain_s, 3),
        "ratio": round(ratio["plain"], 4),
        "overhead": round(ratio["plain"] - 1, 4),
        "data_check_s": round(plain["timings"]["build_seconds"], 4),
        "cell_seconds_sum": round(plain["timings"]["cell_seconds_sum"], 3),
        "tamis_sweep_mlflow_background_s": round(bg_s, 3),
        "overhead_mlflow_background": round(ratio["bg"] - 1, 4),
        "tamis_sweep_mlflow_waited_s": round(waited_s, 3),
        "overhead_mlflow_waited": round(ratio["waited"] - 1, 4),
        "engine_seconds": round(plain["timings"]["wall_seconds"] - plain_cells, 4),
        "mlflow_wait_s": (waited.get("tracking") or {}).get("wait_seconds"),
        "repeats": repeats,
        "runs_s": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "ratios": {k: [round(x, 3) for x in v] for k, v in ratios.items()},
        "first_build_s": round(build_s, 3),
        "peak_rss_mb": peak_mb(),
        "quality": {first: quality},
        "same_metrics_as_loop": same,
        "mlflow_error": (waited.get("tracking") or {}).get("error")
        or (bg.get("tracking") or {}).get("error"),
    }


def parallel(root: Path, seeds: int, repeats: int = 2) -> dict[str, Any]:
    from tamis.pipelines.store import Store
    from tamis.sweeps.engine import plan_sweep
    from tamis.sweeps.run import run_sweep
    from tamis.sweeps.spec import load_sweep

    over = {
        "seeds": list(range(seeds)),
        "recipe": {
            "use": "classifier",
            "params": {"target": "target", "model": "gbm", "max_iter": 60},
        },
    }
    walls: dict[int, list[float]] = {1: [], 2: []}
    tables: dict[int, Any] = {}
    ncells = 0
    stores = {jobs: Store(root / f"parallel-{jobs}") for jobs in (1, 2)}
    for store in stores.values():
        plan_sweep(load_sweep("label_noise", over), store)  # versions built: we time the cells
    for rep in range(repeats):  # interleaved, medians: the machine's speed drifts
        for jobs in (1, 2):
            t0 = time.perf_counter()
            res = run_sweep(
                load_sweep("label_noise", over), stores[jobs], jobs=jobs, report=False, force=True
            )
            walls[jobs].append(time.perf_counter() - t0)
            tables[jobs] = res["table"]
            ncells = len(res["cells"])
            cell_sum = res["timings"]["cell_seconds_sum"]
            print(
                f"rep {rep} jobs={jobs}: wall {walls[jobs][-1]:.1f}s, cells {cell_sum:.1f}s",
                file=sys.stderr,
            )
    med = {j: statistics.median(w) for j, w in walls.items()}
    f1 = {r["version"]: round(r["mean"], 4) for r in tables[1] if r["metric"] == "f1"}
    return {
        "bench": "sweep_parallel[label_noise,gbm]",
        "cells": ncells,
        "jobs1_s": round(med[1], 3),
        "jobs2_s": round(med[2], 3),
        "ratio": round(med[2] / med[1], 4),
        "runs_s": {str(j): [round(x, 3) for x in w] for j, w in walls.items()},
        "same_table": tables[1] == tables[2],
        "peak_rss_mb": peak_mb(),
        "quality": {"f1": f1},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sweep", default="label_noise")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--parallel-seeds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--parallel-repeats", type=int, default=3)
    ap.add_argument("--skip-parallel", action="store_true")
    ap.add_argument("--skip-overhead", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        root = Path(tmp)
        if not args.skip_overhead:
            emit(overhead(args.sweep, args.seeds, root, args.repeats))
        if not args.skip_parallel:
            emit(parallel(root, args.parallel_seeds, args.parallel_repeats))


if __name__ == "__main__":
    main()
