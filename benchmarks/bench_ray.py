"""Ray engine vs local bounded engine: exact and near dedup of a generated corpus, in one run.

Corpus: `benchmarks/_corpus.py` (web-like documents, ~10% exact and ~10% near copies), written as
JSONL then one Parquet file. For each size, each run is a fresh process (its own peak memory):

- `local exact`: `dedup` (columns: [text]) through `BoundedEngine`;
- `ray exact`: the same through `RayEngine` on a local loopback Ray instance (2 CPUs), run twice
  (`cold_seconds`: the first step of a session, its workers start and import tamis; `seconds`: the
  second, warm workers, what every later step of a build costs): stage times
  (ingest into the object store, distributed key/shuffle/reduce, ordered write), the bytes
  shuffled, Ray's start-up apart; peak memory of the driver and of each Ray worker process;
- `local near`: `near_dedup` (text mode) through `BoundedEngine` with the time of each stage
  (signatures, identical sets, LSH bands, verification, write). Under `RayEngine` near dedup runs
  this same path on the driver (`run_bounded` falls back to the local engine), so it is measured
  once.

Parts hashes of the two engines are compared (exact dedup). Figures: one JSON line per size.

    nice -n 10 .venv/bin/python benchmarks/bench_ray.py --docs 25000 50000 100000
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

    workers, others = [], []
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


def run_ray(data: str, name: str, raw: dict[str, Any], work: str, queue: Any) -> None:
    import polars as pl

    from tamis.pipelines.engines.parts import parts_hash
    from tamis.pipelines.engines.ray_engine import ray_engine_session

    step, params = _step(name, raw)
    daemons: dict[str, float] = {}
    with AnonPeak() as mem:
        t0 = time.perf_counter()
        with ray_engine_session(None, MEMORY_LIMIT, Path(work) / "spill") as engine:
            started = time.perf_counter() - t0
            cold = []
            for run in ("cold", "warm"):  # cold: fresh workers import tamis and polars first
                with Timer() as t:
                    parts, out = engine.run_step(
                        step,
                        {"input": pl.scan_parquet(data)},
                        params,
                        _ctx(Path(work)),
                        Path(work) / f"out-{run}",
                    )
                cold.append(t.seconds)
            daemons = _descendants_peak_mb()
    queue.put(
        {
            "seconds": round(t.seconds, 2),
            "cold_seconds": round(cold[0], 2),
            "ray_start_seconds": round(started, 2),
            "stages": {k: round(v, 2) for k, v in engine.timings.items()},
            "shuffle_mb": round(engine.shuffle_bytes / 1e6, 1),
            "buckets": engine.stats.buckets,
            "driver_peak_mb": round(mem.mb, 1),
            **daemons,
            "hash": parts_hash(parts),
            "rows_out": sum(p["rows"] for p in parts),
        }
    )


def one_size(docs: int, work: Path, near: bool) -> dict[str, Any]:
    import polars as pl

    jsonl = work / f"corpus-{docs}.jsonl"
    data = work / f"corpus-{docs}.parquet"
    t0 = time.perf_counter()
    # ~2.3 KB a document: generate a little more, keep the first `docs`
    generate(jsonl, int(docs * 2600), seed=0)
    pl.scan_ndjson(jsonl).head(docs).sink_parquet(data)
    text_mb = pl.scan_parquet(data).select(pl.col("text").str.len_bytes().sum()).collect().item()
    gen = time.perf_counter() - t0
    exact = ("dedup", {"columns": ["text"]})
    record: dict[str, Any] = {"docs": docs, "text_mb": round(text_mb / 1e6, 1), "gen_s": round(gen)}
    local = in_fresh_process(run_local, str(data), *exact, str(work / "le"))
    ray = in_fresh_process(run_ray, str(data), *exact, str(work / "re"))
    record["exact_local"] = local
    record["exact_ray"] = ray
    record["exact_same_hash"] = local["hash"] == ray["hash"]
    record["exact_ratio"] = round(ray["seconds"] / max(local["seconds"], 1e-9), 2)
    record["exact_ratio_cold"] = round(ray["cold_seconds"] / max(local["seconds"], 1e-9), 2)
    if near:
        near_step = ("near_dedup", {"column": "text"})
        record["near_local"] = in_fresh_process(run_local, str(data), *near_step, str(work / "ln"))
        secs = record["near_local"]["seconds"]
        record["near_gb_per_core_hour"] = round(text_mb / 1e9 / (secs * 2 / 3600), 2)
    for path in (jsonl, data):
        path.unlink()
    return record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, nargs="+", default=[25_000, 50_000, 100_000])
    ap.add_argument("--no-near", action="store_true", help="exact dedup only")
    args = ap.parse_args()
    threading.excepthook = lambda a: None  # AnonPeak threads of dying children stay quiet
    os.environ.setdefault("POLARS_MAX_THREADS", "2")
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        for docs in args.docs:
            emit(one_size(docs, Path(tmp), not args.no_near))


if __name__ == "__main__":
    main()
