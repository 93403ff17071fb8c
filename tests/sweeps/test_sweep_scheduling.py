"""What keeps a sweep's own cost small: the parent works beside its workers, the data-version
plan is cached, catalog rows go in one transaction, MLflow may finish in the background."""

from __future__ import annotations

import copy
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tamis.pipelines.store import Store
from tamis.sweeps import builds, engine, load_sweep_result, run_sweep
from tamis.sweeps.cell import tune_malloc
from tamis.sweeps.scheduler import run_tasks
from tamis.sweeps.spec import parse_sweep


def _pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x


def test_run_tasks_uses_the_parent_and_the_workers_and_reports_every_task() -> None:
    tasks = [(_pid_after, (0.3,)) for _ in range(6)]
    pids: dict[int, int] = {}
    with ProcessPoolExecutor(max_workers=1) as pool:
        pool.submit(os.getpid).result()  # the worker is up
        run_tasks(
            tasks,
            pool=pool,
            workers=1,
            local=lambda t: t[0](*t[1]),
            on_result=lambda i, v: pids.__setitem__(i, v),
            on_error=lambda i, e: pytest.fail(str(e)),
        )
    assert sorted(pids) == list(range(6))
    mine = sum(p == os.getpid() for p in pids.values())
    assert 1 <= mine <= 5  # both this process and the worker ran tasks

    # errors go to on_error (in the worker and here) and the other tasks still run
    done: list[int] = []
    errors: list[tuple[int, str]] = []
    with ProcessPoolExecutor(max_workers=1) as pool:
        run_tasks(
            [(_fail_on_three, (x,)) for x in range(6)],
            pool=pool,
            workers=1,
            local=lambda t: t[0](*t[1]),
            on_result=lambda i, v: done.append(v),
            on_error=lambda i, e: errors.append((i, str(e))),
        )
    assert sorted(done) == [0, 1, 2, 4, 5] and errors == [(3, "three")]

    # alone (no pool) tasks run in order
    order: list[int] = []
    run_tasks(
        [(_fail_on_three, (x,)) for x in (5, 1, 4)],
        pool=None,
        workers=0,
        local=lambda t: t[0](*t[1]),
        on_result=lambda i, v: order.append(v),
        on_error=lambda i, e: None,
    )
    assert order == [5, 1, 4]


def test_tune_malloc_is_applied_on_glibc() -> None:
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    assert tune_malloc() is True


def test_plan_cache_skips_rebuilds_until_an_input_changes(
    tmp_path: Path, iris_sweep: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = copy.deepcopy(iris_sweep)
    data["seeds"] = [0, 1]
    data["pipeline"]["steps"]["small"] = {
        "use": "sample",
        "input": "split.train",
        "params": {"n": 20},
    }
    data["versions"] = {"small": "small"}
    store = Store(tmp_path / "s")
    first = engine.plan_sweep(parse_sweep(data), store)
    calls: list[int] = []
    real_build = builds.build_seed

    def counting(root: str, pspec: Any, seed: int, targets: list[str], threads: int = 1) -> Any:
        calls.append(seed)
        return real_build(root, pspec, seed, targets, threads)

    monkeypatch.setattr(builds, "build_seed", counting)
    again = engine.plan_sweep(parse_sweep(data), store)
    assert calls == [] and again.data_ids == first.data_ids and again.cells == first.cells

    # a step param changes: rebuilt, with new ids
    data["pipeline"]["steps"]["small"]["params"]["n"] = 25
    changed = engine.plan_sweep(parse_sweep(data), store)
    assert sorted(calls) == [0, 1] and changed.data_ids != first.data_ids

    # a version the cache names was deleted: rebuilt (and the same ids come back)
    calls.clear()
    data["pipeline"]["steps"]["small"]["params"]["n"] = 20
    victim = first.data_ids["small"][1]
    import shutil

    shutil.rmtree(store.version_dir(victim))
    rebuilt = engine.plan_sweep(parse_sweep(data), store)
    assert calls == [1] and rebuilt.data_ids == first.data_ids and store.has_version(victim)

    # the source file changes (size, mtime): rebuilt
    calls.clear()
    source = next((store.runs_dir / "sweep-data").glob("*.parquet"))
    os.utime(source, ns=(time.time_ns(), time.time_ns() + 10**9))
    engine.plan_sweep(parse_sweep(data), store)
    assert sorted(calls) == [0, 1]


def test_sweep_and_cell_rows_are_written_together(
    tmp_path: Path, iris_sweep: dict[str, Any]
) -> None:
    store = Store(tmp_path / "s")
    out = run_sweep(parse_sweep(iris_sweep), store, report=False)
    rows = store.catalog.query("SELECT kind, status, info_json FROM runs WHERE kind LIKE 'sweep%'")
    kinds = sorted(r["kind"] for r in rows)
    assert kinds == ["sweep", "sweep_cell"]
    cell = next(json.loads(r["info_json"]) for r in rows if r["kind"] == "sweep_cell")
    assert cell["metrics"] == out["cells"][0]["metrics"]


def test_mlflow_can_finish_in_the_background(
    tmp_path: Path, iris_sweep: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    store = Store(tmp_path / "s")
    uri = str(tmp_path / "mlruns")
    out = run_sweep(
        parse_sweep(iris_sweep), store, report=False, tracking_uri=uri, wait_tracking=False
    )
    track = out["tracking"]
    assert track["error"] is None and track["wait_seconds"] < 1.0
    outcome = Path(track["outcome"])
    deadline = time.time() + 90
    while not outcome.exists() and time.time() < deadline:
        time.sleep(0.2)
    said = json.loads(outcome.read_text())
    assert said["done"] and said["error"] is None and said["parent_id"]
    loaded = load_sweep_result(store, "sweep/iris")
    assert loaded is not None
    assert loaded["tracking"]["parent_run_id"] == said["parent_id"]
    assert loaded["tracking"]["pending"] is False

    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=track["uri"])
    exp = client.get_experiment_by_name("tamis-sweep-iris")
    children = client.search_runs(
        [exp.experiment_id], f"tags.mlflow.parentRunId = '{said['parent_id']}'"
    )
    assert len(children) == 1 and "accuracy" in children[0].data.metrics
    parent = client.get_run(said["parent_id"])
    assert parent.info.status == "FINISHED"
