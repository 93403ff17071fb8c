"""Run independent tasks on a process pool *and* in this process at once (`--jobs N`).

`--jobs N` starts N-1 worker processes and keeps this process busy too: a spawned worker needs
a second or two to import polars, scikit-learn or torch, and a parent that only waited would
leave a core idle for that long. A feeder thread hands each worker its next task the moment it
finishes one (never a backlog, so whichever process frees up first takes the next task and the
tail stays short); this process takes tasks from the other end of the same queue between its
own. Results are delivered to the callbacks on the calling thread.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from pathlib import Path
from typing import Any

from tamis.errors import TamisError
from tamis.sweeps.cell import (
    execute_cell,
    execute_cell_in_worker,
    init_worker,
    limit_threads,
    load_cell,
    save_cell,
    tune_malloc,
    warm_up,
)
from tamis.sweeps.documents import CellResult, CellTask
from tamis.sweeps.plan import Plan

Task = tuple[Callable[..., Any], tuple[Any, ...]]


def run_tasks(
    tasks: Sequence[Task],
    *,
    pool: ProcessPoolExecutor | None,
    workers: int,
    local: Callable[[Task], Any],
    on_result: Callable[[int, Any], None],
    on_error: Callable[[int, BaseException], None],
) -> None:
    """Run every task; `on_result(index, value)` or `on_error(index, exc)` once per task.

    `local(task)` runs a task in this process (the caller sets thread limits and the like).
    Exceptions of a task go to `on_error` and the others keep running; KeyboardInterrupt and
    other BaseExceptions stop the feeding and propagate (the caller shuts the pool down).
    """
    pending = deque(range(len(tasks)))  # popleft/pop are atomic: shared with the feeder
    outcomes: queue.Queue[tuple[int, bool, Any]] = queue.Queue()
    stop = threading.Event()
    feeder: threading.Thread | None = None
    if pool is not None and workers > 0:
        feeder = threading.Thread(
            target=_feed,
            args=(pool, workers, tasks, pending, outcomes, stop),
            name="tamis-feeder",
            daemon=True,
        )
        feeder.start()

    def deliver(item: tuple[int, bool, Any]) -> None:
        i, ok, value = item
        if ok:
            on_result(i, value)
        elif isinstance(value, Exception):
            on_error(i, value)
        else:
            raise value

    try:
        while True:
            while not outcomes.empty():
                deliver(outcomes.get())
            try:
                # alone, in plan order; beside workers (who take from the front), from the back
                i = pending.pop() if feeder is not None else pending.popleft()
            except IndexError:
                break
            try:
                value = local(tasks[i])
            except Exception as exc:
                on_error(i, exc)
                continue
            on_result(i, value)
        while feeder is not None and (feeder.is_alive() or not outcomes.empty()):
            with contextlib.suppress(queue.Empty):
                deliver(outcomes.get(timeout=0.05))
    finally:
        stop.set()


def _feed(
    pool: ProcessPoolExecutor,
    workers: int,
    tasks: Sequence[Task],
    pending: deque[int],
    outcomes: queue.Queue[tuple[int, bool, Any]],
    stop: threading.Event,
) -> None:
    """The feeder thread: keep each worker busy with exactly one task."""
    inflight: dict[Future[Any], int] = {}
    while True:
        while len(inflight) < workers and not stop.is_set():
            try:
                i = pending.popleft()
            except IndexError:
                break
            fn, args = tasks[i]
            try:
                inflight[pool.submit(fn, *args)] = i
            except BaseException as exc:  # a broken or shut-down pool
                outcomes.put((i, False, exc if isinstance(exc, Exception) else RuntimeError(exc)))
        if not inflight:
            return
        done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
        for fut in done:
            i = inflight.pop(fut)
            try:
                outcomes.put((i, True, fut.result()))
            except BaseException as exc:  # CancelledError too: the task did not run
                outcomes.put((i, False, exc if isinstance(exc, Exception) else RuntimeError(exc)))


def make_pool(workers: int, threads: int, warm: tuple[str, ...] = ()) -> ProcessPoolExecutor:
    """Worker processes, started at once so their imports overlap the parent's planning."""
    import multiprocessing

    from tamis.sweeps.cell import noop

    # spawn, not fork: forking a process that already runs Polars/torch threads can deadlock
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=init_worker,
        initargs=(threads, warm),
    )
    for _ in range(workers):
        pool.submit(noop)
    return pool


def run_cells(
    plan: Plan,
    *,
    jobs: int = 1,
    force: bool = False,
    on_done: Any = None,
    pool: ProcessPoolExecutor | None = None,
) -> tuple[list[CellResult], set[str]]:
    """Run the unfinished cells; returns every cell's result (in plan order) and the keys run."""
    root = Path(plan.cells[0]["store"]) if plan.cells else Path(".")
    results: dict[str, CellResult] = {}
    todo: list[CellTask] = []
    for cell in plan.cells:
        finished = None if force else load_cell(root, cell["key"])
        if finished is not None:
            results[cell["key"]] = finished
            if on_done:
                on_done(finished, cached=True)
        else:
            todo.append(cell)
    unique = list({c["key"]: c for c in todo}.values())
    failures: list[tuple[int, CellTask, Exception]] = []

    # this process's cells are written by a thread while the next cell runs (fsync is slow)
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tamis-cell-writer")
    saves: list[Future[None]] = []

    def done(i: int, res: CellResult) -> None:
        results[res["key"]] = res
        if res.get("pid") == os.getpid():
            saves.append(writer.submit(save_cell, root, res))
        if on_done:
            on_done(res, cached=False)

    def failed(i: int, exc: BaseException) -> None:
        # keep going: every finished cell is kept for the rerun
        failures.append((i, unique[i], exc if isinstance(exc, Exception) else Exception(exc)))

    threads = int(unique[0].get("threads") or 1) if unique else 1
    # the recipe's libraries load before the cap: it reaches only libraries already loaded
    warm_up(plan.recipe.warm)
    try:
        with limit_threads(threads):
            tune_malloc()
            run_tasks(
                [(execute_cell_in_worker, (c,)) for c in unique],
                pool=pool if jobs > 1 else None,
                workers=jobs - 1,
                local=lambda task: execute_cell(task[1][0], limit=False, persist=False),
                on_result=done,
                on_error=failed,
            )
    finally:
        writer.shutdown(wait=True)
    for fut in saves:
        fut.result()  # a cell that could not be written is an error, not a silent rerun
    if failures:
        _i, bad_cell, first_exc = min(failures, key=lambda f: f[0])  # the first in plan order
        error = cell_error(bad_cell, first_exc)
        if len(failures) > 1:
            error.message += f" ({len(failures)} of {len(unique)} cells failed)"
            error.args = (error.render(),)
        raise error from first_exc
    # the same data + recipe + seed under two version names (or an earlier sweep) is one cell
    return [_as_planned(results[c["key"]], c) for c in plan.cells], {c["key"] for c in unique}


def _as_planned(result: CellResult, cell: CellTask) -> CellResult:
    """A finished cell under the version name and seed the plan gave it."""
    out = result.copy()
    out["version"], out["seed"] = cell["version"], cell["seed"]
    return out


def cell_error(cell: CellTask, exc: BaseException) -> TamisError:
    if isinstance(exc, TamisError):
        exc.message = f"cell {cell['version']} / seed {cell['seed']}: {exc.message}"
        exc.args = (exc.render(),)
        return exc
    return TamisError(
        f"cell {cell['version']} / seed {cell['seed']} failed: {type(exc).__name__}: {exc}",
        fix="finished cells are kept; fix the cause and rerun the sweep to resume",
    )
