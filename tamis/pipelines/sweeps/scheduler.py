"""Run independent tasks on a process pool *and* in this process at once (`--jobs N`).

`--jobs N` starts N-1 worker processes and keeps this process busy too: a spawned worker needs
a second or two to import polars, scikit-learn or torch, and a parent that only waited would
leave a core idle for that long and again at every result. Workers are fed one task at a time
(never a backlog), so whichever process frees up first takes the next task and the tail of the
sweep stays short.
"""

from __future__ import annotations

import os
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
from typing import TYPE_CHECKING, Any

from tamis.errors import TamisError
from tamis.pipelines.sweeps.cell import (
    execute_cell,
    execute_cell_in_worker,
    init_worker,
    limit_threads,
    load_cell,
    save_cell,
    tune_malloc,
)

if TYPE_CHECKING:
    from tamis.pipelines.sweeps.engine import Plan

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
    other BaseExceptions cancel the queue and propagate.
    """
    pending = deque(range(len(tasks)))
    inflight: dict[Future[Any], int] = {}

    def feed() -> None:
        while pool is not None and pending and len(inflight) < workers:
            i = pending.popleft()
            fn, args = tasks[i]
            inflight[pool.submit(fn, *args)] = i

    def harvest(block: bool) -> None:
        if not inflight:
            return
        done, _ = wait(list(inflight), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for fut in done:
            i = inflight.pop(fut)
            try:
                value = fut.result()
            except Exception as exc:
                on_error(i, exc)
                continue
            on_result(i, value)

    try:
        while pending or inflight:
            feed()
            harvest(block=False)
            feed()
            if pending:
                # alone, in plan order; beside workers (who take from the front), from the back
                i = pending.popleft() if pool is None else pending.pop()
                try:
                    value = local(tasks[i])
                except Exception as exc:
                    on_error(i, exc)
                    continue
                on_result(i, value)
            else:
                harvest(block=True)
    except BaseException:
        for fut in inflight:
            fut.cancel()
        raise


def make_pool(workers: int, threads: int, warm: tuple[str, ...] = ()) -> ProcessPoolExecutor:
    """Worker processes, started at once so their imports overlap the parent's planning."""
    import multiprocessing

    from tamis.pipelines.sweeps.cell import noop

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
) -> tuple[list[dict[str, Any]], set[str]]:
    """Run the unfinished cells; returns every cell's result (in plan order) and the keys run."""
    root = Path(plan.cells[0]["store"]) if plan.cells else Path(".")
    results: dict[str, dict[str, Any]] = {}
    todo: list[dict[str, Any]] = []
    for cell in plan.cells:
        finished = None if force else load_cell(root, cell["key"])
        if finished is not None:
            results[cell["key"]] = finished
            if on_done:
                on_done(finished, cached=True)
        else:
            todo.append(cell)
    unique = list({c["key"]: c for c in todo}.values())
    failures: list[tuple[int, dict[str, Any], Exception]] = []

    # this process's cells are written by a thread while the next cell runs (fsync is slow)
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tamis-cell-writer")
    saves: list[Future[None]] = []

    def done(i: int, res: dict[str, Any]) -> None:
        results[res["key"]] = res
        if res.get("pid") == os.getpid():
            saves.append(writer.submit(save_cell, root, res))
        if on_done:
            on_done(res, cached=False)

    def failed(i: int, exc: BaseException) -> None:
        # keep going: every finished cell is kept for the rerun
        failures.append((i, unique[i], exc if isinstance(exc, Exception) else Exception(exc)))

    threads = int(unique[0].get("threads") or 1) if unique else 1
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
    ordered = [
        {**results[c["key"]], "version": c["version"], "seed": c["seed"]} for c in plan.cells
    ]
    return ordered, {c["key"] for c in unique}


def cell_error(cell: dict[str, Any], exc: BaseException) -> TamisError:
    if isinstance(exc, TamisError):
        exc.message = f"cell {cell['version']} / seed {cell['seed']}: {exc.message}"
        exc.args = (exc.render(),)
        return exc
    return TamisError(
        f"cell {cell['version']} / seed {cell['seed']} failed: {type(exc).__name__}: {exc}",
        fix="finished cells are kept; fix the cause and rerun the sweep to resume",
    )
