"""One sweep cell: read the data version and the test version, run the recipe, save the result.

This module is what worker processes import, so it stays light at import time; `init_worker`
limits BLAS/OpenMP threads before numpy is loaded so N parallel cells share the cores fairly.
A cell is finished when its `result.json` exists (written atomically): reruns skip it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tamis.sweeps.documents import CellResult, CellTask

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "POLARS_MAX_THREADS")
RESULT = "result.json"
#: glibc heap settings while cells run (TAMIS_MALLOC_TRIM_MB=0 keeps glibc's defaults)
TRIM_MB = 256
MMAP_MB = 32
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers, from <malloc.h>
_tuned = False


def tune_malloc() -> bool:
    """Serve allocations under 32 MiB from the heap and keep up to 256 MiB of it when freed.

    Model fitting allocates and frees the same few hundred kB over and over (histograms of
    gradient boosting, solver work arrays). glibc's defaults are dynamic: they start by mmapping
    every block over 128 kB and returning freed heap at once, and only grow once big blocks have
    been freed, so a fresh worker page-faults its working memory in and out on every fit. Both
    values are set together: setting one turns the dynamic adjustment off, and a trim threshold
    alone at process start pins the mmap threshold at 128 kB (measured here: 3x slower cells).
    With both, gradient-boosting cells in a new worker ran as fast as in a long-lived process
    (1.0 s against 1.1-1.4 s with the defaults). Process-wide and permanent (glibc has no undo),
    so only sweep processes call it; a no-op off glibc.
    """
    global _tuned
    if _tuned:
        return True
    mb = int(os.environ.get("TAMIS_MALLOC_TRIM_MB", TRIM_MB))
    if mb <= 0:
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        _tuned = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_MB << 20)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, mb << 20)
        )
    except (OSError, AttributeError):  # not glibc
        return False
    return _tuned


def init_worker(threads: int, warm: tuple[str, ...] = ()) -> None:
    """Cap threads before numpy loads, then import what the cells need while the parent plans."""
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    tune_malloc()
    warm_up(warm)
    if "torch" in warm:
        import torch

        torch.set_num_threads(threads)


def warm_up(modules: tuple[str, ...]) -> None:
    """Import what the cells need. Before `limit_threads` too: threadpoolctl caps only libraries
    already loaded, and an OpenMP runtime loaded later would start one thread per core."""
    import importlib

    for module in ("polars", "tamis.pipelines.store", "tamis.sweeps.recipes", *modules):
        with contextlib.suppress(ImportError):  # optional modules
            importlib.import_module(module)


def noop() -> int:
    return os.getpid()


def cell_dir(store_root: Path, key: str) -> Path:
    return store_root / "runs" / "cells" / key


def load_cell(store_root: Path, key: str) -> CellResult | None:
    """A finished cell's result, or None (not run, unreadable, or its predictions are gone)."""
    path = cell_dir(store_root, key) / RESULT
    try:
        with open(path) as fh:
            out: CellResult = json.load(fh)
    except FileNotFoundError:
        return None
    except ValueError:  # unreadable (a disk fault): run the cell again
        return None
    pred = out.get("predictions")
    if pred and not (path.parent / pred.get("file", "predictions.parquet")).is_file():
        return None
    return out


_controller: tuple[int, Any] | None = None


def _threadpools() -> Any:
    """threadpoolctl's view of the loaded BLAS/OpenMP libraries, found again only after new
    imports (finding them walks every loaded shared library: ~5 ms)."""
    import sys

    from threadpoolctl import ThreadpoolController

    global _controller
    if _controller is None or _controller[0] != len(sys.modules):
        _controller = (len(sys.modules), ThreadpoolController())
    return _controller[1]


def limit_threads(threads: int) -> Any:
    """A context limiting BLAS/OpenMP (and torch) threads: small numeric kernels on a loaded
    machine run far slower with spinning thread pools than on one thread."""
    import sys
    from contextlib import ExitStack

    stack = ExitStack()
    stack.enter_context(_threadpools().limit(limits=threads))
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        stack.callback(torch.set_num_threads, before)
    return stack


def execute_cell(payload: CellTask, limit: bool = True, persist: bool = True) -> CellResult:
    """Run one cell described by a JSON-able payload; returns (and stores) its result.

    `limit=False` when the caller already holds `limit_threads` (a sequential loop) or the
    process was started by `init_worker` (its thread caps are in the environment).
    `persist=False` leaves writing `result.json` to the caller (`save_cell`), e.g. to a thread
    that does it while the next cell runs.
    """
    if not limit:
        return _execute_cell(payload, persist)
    with limit_threads(int(payload.get("threads") or 1)):
        return _execute_cell(payload, persist)


def save_cell(store_root: Path | str, result: CellResult) -> None:
    """Write a finished cell's `result.json` atomically (temp file, fsync, rename)."""
    from tamis.pipelines.store import write_json_atomic

    write_json_atomic(cell_dir(Path(store_root), result["key"]) / RESULT, result)


def execute_cell_in_worker(payload: CellTask) -> CellResult:
    return execute_cell(payload, limit=False)


def _execute_cell(payload: CellTask, persist: bool) -> CellResult:
    from tamis.pipelines.store import Store, now
    from tamis.sweeps.recipes import get_recipe

    t0 = time.perf_counter()
    started = now()
    store = Store(payload["store"])
    out_dir = cell_dir(store.root, payload["key"])
    if out_dir.exists():  # litter of an interrupted run of this cell
        shutil.rmtree(out_dir, ignore_errors=True)
    work = out_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    recipe = get_recipe(payload["recipe"])()
    params = recipe.Params.model_validate(payload["params"])
    t_read = time.perf_counter()
    # through Store.read: a damaged version is a clear error, not wrong rows
    train = store.read(payload["data_id"])
    test_id = payload.get("test_id")
    test = store.read(test_id) if test_id else None
    read_s = time.perf_counter() - t_read
    t_fit = time.perf_counter()
    res = recipe.run(train, test, params, int(payload["seed"]), work)
    fit_s = time.perf_counter() - t_fit
    if work.exists() and not any(work.iterdir()):
        work.rmdir()
    # per-example predictions beside result.json (written first: a finished cell has both)
    predictions = res.predictions.save(out_dir) if res.predictions is not None else None
    result: CellResult = {
        "key": payload["key"],
        "version": payload["version"],
        "seed": payload["seed"],
        "recipe": payload["recipe"],
        "params": payload["params"],
        "data_id": payload["data_id"],
        "test_id": payload.get("test_id"),
        "metrics": {k: _finite(v) for k, v in res.metrics.items()},
        "curves": res.curves,
        "info": res.info,
        "predictions": predictions,
        "started_at": started,
        "finished_at": now(),
        "read_seconds": read_s,
        "fit_seconds": fit_s,
        "seconds": time.perf_counter() - t0,
        "pid": os.getpid(),
    }
    if persist:
        save_cell(store.root, result)
    return result


def _finite(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if x == x and x not in (float("inf"), float("-inf")) else None
