"""Helpers shared by the benchmark scripts: memory, timing, fresh processes, the JSON line, data.

Not a benchmark. Each `bench_*.py` imports it as `_common` (its own folder is put on `sys.path`),
so every script still runs standalone as `python benchmarks/bench_x.py`.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from typing import Any

SHARED_DATASETS = Path(
    os.environ.get(
        "TAMIS_SHARED_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"
    )
)
ADULT_NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]


def rss_kb(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in kB ("VmRSS", "VmHWM" = peak)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def peak_mb_above(base_kb: int) -> float:
    """Peak RSS of this process (VmHWM) above `base_kb`, in MB."""
    return (rss_kb("VmHWM") - base_kb) / 1024


class AnonPeak:
    """`with AnonPeak() as m: ...` then `m.mb`: the peak RssAnon of this process, sampled.

    RssAnon is the memory the process owns (heap, arrays); VmHWM also counts the file pages it
    maps (Polars memory-maps the files it scans, and those clean pages stay in RSS until the
    kernel needs them), so a streamed 2 GB file shows ~2 GB of VmHWM with little anonymous memory.
    """

    def __init__(self, every: float = 0.05) -> None:
        self.every = every
        self.peak_kb = 0
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, rss_kb("RssAnon"))
            self._stop.wait(self.every)

    def __enter__(self) -> AnonPeak:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, rss_kb("RssAnon"))

    @property
    def mb(self) -> float:
        return self.peak_kb / 1024


class Timer:
    """`with Timer() as t: ...` then `t.seconds` (wall) and `t.cpu_seconds` (this process)."""

    seconds: float
    cpu_seconds: float

    def __enter__(self) -> Timer:
        self._c0 = time.process_time()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        self.cpu_seconds = time.process_time() - self._c0


def in_fresh_process(
    target: Callable[..., None], *args: Any, start: str = "spawn"
) -> dict[str, Any]:
    """Run `target(*args, queue)` in a new process (so peak memory is its own); return the one
    dict it puts on the queue."""
    ctx = mp.get_context(start)
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    while True:  # a child that dies (exception, OOM kill) never puts: fail instead of waiting
        try:
            result = dict(queue.get(timeout=5))
            break
        except Empty:
            if not proc.is_alive():
                raise RuntimeError(
                    f"{target.__name__} died (exit code {proc.exitcode}) without a result"
                ) from None
    proc.join()
    return result


def versus(metric: str, baseline: float, tamis: float, digits: int = 3) -> dict[str, float]:
    """`baseline_<metric>` and `tamis_<metric>`, rounded: the two sides of one figure."""
    return {f"baseline_{metric}": round(baseline, digits), f"tamis_{metric}": round(tamis, digits)}


def emit(record: dict[str, Any]) -> None:
    """Print one result as a single JSON line (stdout carries nothing else)."""
    print(json.dumps(record, default=str), flush=True)


def load_adult(name: str) -> Any:
    """UCI Adult from the shared datasets, cleaned as the `normalize` step would (polars)."""
    import polars as pl

    df = pl.read_csv(SHARED_DATASETS / "adult" / name, infer_schema_length=10000)
    df = df.rename({c: c.strip() for c in df.columns})
    strs = [c for c, t in df.schema.items() if t == pl.String]
    df = df.with_columns([pl.col(c).str.strip_chars() for c in strs]).with_columns(
        [pl.when(pl.col(c) == "?").then(None).otherwise(pl.col(c)).alias(c) for c in strs]
    )
    return df.with_columns([pl.col(c).cast(pl.Int64) for c in ADULT_NUMERIC])
