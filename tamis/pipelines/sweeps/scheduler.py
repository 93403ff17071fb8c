"""Run independent tasks on a process pool *and* in this process at once (`--jobs N`).

`--jobs N` starts N-1 worker processes and keeps this process busy too: a spawned worker needs
a second or two to import polars, scikit-learn or torch, and a parent that only waited would
leave a core idle for that long and again at every result. Workers are fed one task at a time
(never a backlog), so whichever process frees up first takes the next task and the tail of the
sweep stays short.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

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
