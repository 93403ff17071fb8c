"""Ray engine vs local bounded engine: exact and near dedup of a generated corpus.

Corpus: `benchmarks/_corpus.py` (web-like documents, ~10% exact and ~10% near copies), written as
JSONL then one Parquet file (under --work, default a temp dir). For each size and step, each
engine runs in a fresh process (its own peak memory):

- `local`: the step through `BoundedEngine`, with the time of each near dedup stage (signatures,
  identical sets, LSH bands, verification, write);
- `ray`: the same through `RayEngine` on a local loopback Ray instance (2 CPUs; `--warm` also
  times a second run, warm workers): stage times (near dedup: signatures, identical, band
  grouping, verification, components, marking, parts; exact dedup: key buckets, reduce, ranges,
  parts), the bytes each stage hands the next through files (the shuffle), the peak memory of
  the driver and of each Ray worker process, Ray's start-up apart.

Parts hashes of the two engines are compared (same hash: the same rows removed, so the same recall;
`planted_copies` is what the generator planted, `removed` what near dedup removed: copies of
copies and chance near pairs make it larger). The load average (1 min) is
recorded before and after each run: other work on the machine slows every figure.

    nice -n 10 .venv/bin/python benchmarks/bench_ray.py --docs 250000 500000 --work /work/tmp/D
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import AnonPeak, Timer, emit, in_fresh_process  # noqa: E402
from _corpus import generate  # noqa: E402

MEMORY_LIMIT = 2 * 10**9


def _ctx(work: Path) -> Any:
    from tamis.pipelines.steps.base import StepContext

    art = work / "art"
    art.mkdir(parents=True, exist_ok=True)
    return StepContext(step="s", pipeline="bench", seed=0, artifacts_dir=art)


def _step(name: str, raw: dict[str, Any]) -> tuple[Any, Any]:
    from tamis.pipelines.registry import get_step_type

    step = get_step_type(name)()
    return step, step.Params(**raw)


def _descendants_peak_mb() -> dict[str, float]:
    """Peak RSS (VmHWM) of every Ray process under this one, in MB: workers and the rest."""
    import psutil

    workers: list[float] = []
    others: list[float] = []
    for child in psutil.Process().children(recursive=True):
        try:
            with open(f"/proc/{child.pid}/status") as fh:
                hwm = next((int(x.split()[1]) for x in fh if x.startswith("VmHWM")), 0)
            name = " ".join(child.cmdline()[:1])
        except (OSError, psutil.Error):
            continue
        (workers if "ray::" in name or "default_worker" in name else others).append(hwm / 1024)
    return {
        "worker_max_mb": round(max(workers, default=0.0), 1),
        "workers_sum_mb": round(sum(workers), 1),
        "workers": len(workers),
        "ray_daemons_sum_mb": round(sum(others), 1),
    }


def run_local(data: str, name: str, raw: dict[str, Any], work: str, queue: Any) -> None:
    import polars as pl

    from tamis.pipelines.engines.local import BoundedEngine
    from tamis.pipelines.engines.parts import parts_hash

    stages: list[tuple[float, str]] = []
    engine = BoundedEngine(
        memory_limit=MEMORY_LIMIT,
        spill_root=Path(work) / "spill",
        progress=lambda msg, *a, **k: stages.append((time.perf_counter(), str(msg))),
    )
    step, params = _step(name, raw)
    with AnonPeak() as mem, Timer() as t:
        t0 = time.perf_counter()
        parts, out = engine.run_step(
            step, {"input": pl.scan_parquet(data)}, params, _ctx(Path(work)), Path(work) / "out"
        )
        t1 = time.perf_counter()
    marks = [(ts, m) for ts, m in stages if m.startswith("near_dedup:")] + [(t1, "end")]
    per_stage = {
        m.removeprefix("near_dedup: "): round(marks[i + 1][0] - ts, 2)
        for i, (ts, m) in enumerate(marks[:-1])
    }
    queue.put(
        {
            "seconds": round(t.seconds, 2),
            "stages": per_stage or {"all": round(t1 - t0, 2)},
            "driver_peak_mb": round(mem.mb, 1),
            "hash": parts_hash(parts),
            "rows_out": sum(p["rows"] for p in parts),
            "spill_mb": round(engine.stats.peak_spill_bytes / 1e6, 1),
        }
    )


def run_ray(data: str, name: str, raw: dict[str, Any], work: str, warm: bool, queue: Any) -> None:
    import polars as pl

    from tamis.pipelines.engines.parts import parts_hash
    from tamis.pipelines.engines.ray_engine import ray_engine_session

    step, params = _step(name, raw)
    daemons: dict[str, float] = {}
    with AnonPeak() as mem:
        t0 = time.perf_counter()
        with ray_engine_session(None, MEMORY_LIMIT, Path(work) / "spill") as engine:
            started = time.perf_counter() - t0
            times = []
            for run in ("cold", "warm")[: 2 if warm else 1]:  # cold: workers import tamis first
                with Timer() as t:
                    parts, out = engine.run_step(
                        step,
                        {"input": pl.scan_parquet(data)},
                        params,
                        _ctx(Path(work)),
                        Path(work) / f"out-{run}",
                    )
                times.append(t.seconds)
            daemons = _descendants_peak_mb()
    near = engine.near_run
    queue.put(
        {
            "seconds": round(times[-1], 2),
            "cold_seconds": round(times[0], 2),
            "ray_start_seconds": round(started, 2),
            "stages": {k: round(v, 2) for k, v in engine.timings.items()},
            "shuffle_mb": {k: round(v / 1e6, 1) for k, v in near.shuffle.items()}
            if near is not None
            else round(engine.shuffle_bytes / 1e6, 1),
            "task_peak_mb": round(near.worker_peak / 1e6, 1) if near is not None else None,
            "task_peak_mb_after": {k: round(v / 1e6) for k, v in near.peaks.items()}
            if near is not None
            else None,
            "buckets": engine.stats.buckets,
            "batch_rows": engine.stats.batch_rows,
            "driver_peak_mb": round(mem.mb, 1),
            **daemons,
            "hash": parts_hash(parts),
            "rows_out": sum(p["rows"] for p in parts),
        }
    )


def _load() -> float:
    return round(os.getloadavg()[0], 1)


def _pair(
    data: Path, step: tuple[str, dict[str, Any]], work: Path, warm: bool, local: bool = True
) -> dict[str, Any]:
    """The step under both engines (Ray only without `local`), with the load average around
    each run."""
    record: dict[str, Any] = {}
    for engine, target, extra in (("local", run_local, ()), ("ray", run_ray, (warm,))):
        if engine == "local" and not local:
            continue
        before = _load()
        result = in_fresh_process(target, str(data), *step, str(work / engine), *extra)
        record[engine] = {**result, "load_before": before, "load_after": _load()}
    if local:
        record["same_hash"] = record["local"]["hash"] == record["ray"]["hash"]
        record["ratio"] = round(record["ray"]["seconds"] / max(record["local"]["seconds"], 1e-9), 2)
    return record


def one_size(
    docs: int, work: Path, near: bool, exact: bool, warm: bool, exact_local: bool = True
) -> dict[str, Any]:
    import polars as pl

    jsonl = work / f"corpus-{docs}.jsonl"
    data = work / f"corpus-{docs}.parquet"
    t0 = time.perf_counter()
    # ~2.3 KB a document: generate a little more, keep the first `docs`
    planted = generate(jsonl, int(docs * 2600), seed=0)
    # row groups of 8,192 documents (~20 MB), as the store's parts are ~32 MB: a task's slice
    # decodes its row groups only
    pl.scan_ndjson(jsonl).head(docs).sink_parquet(data, row_group_size=8192)
    jsonl.unlink()
    text_mb = pl.scan_parquet(data).select(pl.col("text").str.len_bytes().sum()).collect().item()
    copies = (planted["exact"] + planted["near"]) * docs / max(planted["docs"], 1)
    record: dict[str, Any] = {
        "docs": docs,
        "text_mb": round(text_mb / 1e6, 1),
        "planted_copies": round(copies),
        "gen_s": round(time.perf_counter() - t0),
        "cores": os.cpu_count(),
    }
    try:
        if exact:
            step = ("dedup", {"columns": ["text"]})
            record["exact"] = _pair(data, step, work, warm, exact_local)
        if near:
            pair = _pair(data, ("near_dedup", {"column": "text"}), work, warm)
            for engine in ("local", "ray"):
                secs = pair[engine]["seconds"]
                pair[engine]["gb_per_core_hour"] = round(text_mb / 1e9 / (secs * 2 / 3600), 2)
                pair[engine]["removed"] = docs - pair[engine]["rows_out"]
            record["near"] = pair
    finally:
        data.unlink()
    return record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, nargs="+", default=[25_000, 50_000, 100_000])
    ap.add_argument("--no-near", action="store_true", help="exact dedup only")
    ap.add_argument("--no-exact", action="store_true", help="near dedup only")
    ap.add_argument("--warm", action="store_true", help="Ray: time a second run (warm workers)")
    ap.add_argument(
        "--no-local-exact", action="store_true", help="exact dedup on Ray only (no local run)"
    )
    ap.add_argument("--work", type=Path, default=None, help="where the corpus and spill go")
    args = ap.parse_args()
    threading.excepthook = lambda a: None  # AnonPeak threads of dying children stay quiet
    os.environ.setdefault("POLARS_MAX_THREADS", "2")
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-ray-", dir=args.work) as tmp:
        for docs in args.docs:
            emit(
                one_size(
                    docs,
                    Path(tmp),
                    not args.no_near,
                    not args.no_exact,
                    args.warm,
                    not args.no_local_exact,
                )
            )


if __name__ == "__main__":
    main()
