"""Contamination out of core: a JSONL corpus several times the memory limit checked against a
held-out slice by the `leakage` step under the bounded engine (`Leakage.run_bounded`).

1. The corpus (`_corpus.generate`, `--corpus-factor` x `--memory-limit` bytes) is read into
   Parquet parts by tamis' source reader (as a build does), in its own process.
2. A held-out slice of `--held` documents drawn from the corpus: a third exact copies, a third
   edited copies (one word in 40 replaced), a third with their words shuffled (no shared 13-gram,
   few shared 5-grams).
3. In a fresh process: `leakage` with `text` (13-gram contamination and near overlap at Jaccard
   0.8 on word 5-grams) and the exact check on `text`, `action: drop`, under the limit. Reported:
   time, docs/s, peak RSS (VmHWM) and peak anonymous memory (RssAnon, sampled) against the limit,
   the figures of the report.
4. Independent: DuckDB counts the corpus rows whose text equals a held-out text (the exact
   check's `input_rows`) and the held-out texts found in the corpus (`eval_rows`).
5. The first `--fitting` documents: the in-memory `run` and `run_bounded` give the same parts
   hash and report.
6. With `--ray`: the same step under the Ray engine (`RayEngine`, a local loopback instance with
   2 CPUs, in a fresh process): the eval side broadcast to one scan task per range of rows.
   Timed twice (cold: the workers import tamis first; warm), Ray's start-up apart; the row gives
   Ray / local time (the bounded run of step 3) and checks the same parts hash and report.

    POLARS_MAX_THREADS=2 nice -n 10 .venv/bin/python benchmarks/bench_leakage_out_of_core.py \
        --memory-limit 256MB --corpus-factor 8 --tmp /work/tmp/C/lk [--ray]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import AnonPeak, Timer, emit, in_fresh_process, rss_kb  # noqa: E402
from _corpus import generate  # noqa: E402


def _params() -> Any:
    from tamis.curate.leakage import LeakageConfig

    return LeakageConfig(columns=["text"], text="text", ngram=13, near_threshold=0.8, action="drop")


def _import(corpus: str, work: str, limit: str, queue: Any) -> None:
    from types import SimpleNamespace

    from tamis.pipelines.engines.local import BoundedEngine
    from tamis.pipelines.engines.memory import parse_size
    from tamis.pipelines.sources.readers import import_source_parts

    engine = BoundedEngine(memory_limit=parse_size(limit), spill_root=Path(work) / "spill")
    spec = SimpleNamespace(
        sources={"corpus": SimpleNamespace(options={})},
        source_path=lambda name: Path(corpus),
        source_format=lambda name: "jsonl",
        file=corpus,
    )
    with Timer() as t:
        read = import_source_parts(spec, "corpus", Path(work) / "src", engine)
    queue.put({"seconds": t.seconds, "parts": [p["path"] for p in read.parts]})


def _held(src: list[Path], n: int, out: Path) -> None:
    import polars as pl

    lf = pl.scan_parquet(src)
    rows = int(lf.select(pl.len()).collect().item())
    rng = np.random.default_rng(5)
    pick = np.sort(rng.choice(rows, n, replace=False))
    texts = (
        lf.with_row_index("r").filter(pl.col("r").is_in(pick.tolist())).collect()["text"].to_list()
    )
    held = []
    for i, text in enumerate(texts):
        words = text.split(" ")
        if i % 3 == 1:
            for j in range(0, len(words), 40):
                words[j] = "heldoutword"
        elif i % 3 == 2:
            rng.shuffle(words)
        held.append(" ".join(words))
    pl.DataFrame({"text": held}).write_parquet(out)


def _ctx(work: Path) -> Any:
    from tamis.pipelines.steps.base import StepContext

    (work / "art").mkdir(parents=True, exist_ok=True)
    return StepContext(step="leak", pipeline="bench", seed=0, artifacts_dir=work / "art")


def _bounded(src: list[str], held: str, work: str, limit: str, head: int, queue: Any) -> None:
    import polars as pl

    from tamis.pipelines.engines.local import BoundedEngine
    from tamis.pipelines.engines.memory import parse_size
    from tamis.pipelines.engines.parts import parts_hash
    from tamis.pipelines.steps.leakage import Leakage

    base = rss_kb("VmRSS") / 1024
    source = pl.scan_parquet(src)
    if head:
        source = source.head(head)
    inputs = {"input": source, "against": [pl.scan_parquet(held)]}
    engine = BoundedEngine(memory_limit=parse_size(limit), spill_root=Path(work) / "spill")
    out = Path(work) / "out"
    with Timer() as t, AnonPeak() as anon:
        parts, output = Leakage().run_bounded(engine, inputs, _params(), _ctx(Path(work)), out)
    queue.put(
        {
            "seconds": t.seconds,
            "cpu_seconds": t.cpu_seconds,
            "rss_before_mb": base,
            "peak_rss_mb": rss_kb("VmHWM") / 1024,
            "peak_anon_mb": anon.mb,
            "batch_rows": engine.stats.batch_rows,
            "parts": len(parts),
            "parts_hash": parts_hash(parts),
            "report": {k: v for k, v in output.report.items() if k != "html"},
        }
    )


def _ray(src: list[str], held: str, work: str, limit: str, queue: Any) -> None:
    import polars as pl

    from tamis.pipelines.engines.memory import parse_size
    from tamis.pipelines.engines.parts import parts_hash
    from tamis.pipelines.engines.ray_engine import ray_engine_session
    from tamis.pipelines.steps.leakage import Leakage

    inputs = {"input": pl.scan_parquet(src), "against": [pl.scan_parquet(held)]}
    with AnonPeak() as anon:
        t0 = time.perf_counter()
        with ray_engine_session(None, parse_size(limit), Path(work) / "spill") as engine:
            started = time.perf_counter() - t0
            times, cpu, parts, output = [], [], [], None
            for run in ("cold", "warm"):  # cold: the workers import tamis first
                with Timer() as t:
                    parts, output = Leakage().run_bounded(
                        engine, inputs, _params(), _ctx(Path(work)), Path(work) / f"out-{run}"
                    )
                times.append(t.seconds)
                cpu.append(t.cpu_seconds + engine.timings["scan_tasks_cpu"])
    assert output is not None
    queue.put(
        {
            "seconds": times[-1],
            "cold_seconds": times[0],
            "cpu_seconds": cpu[-1],  # the driver's and the scan tasks' (not the part tasks')
            "ray_start_seconds": started,
            "stages": {k: round(v, 2) for k, v in engine.timings.items()},
            "chunk_mb": round(engine.shuffle_bytes / 1e6, 1),
            "driver_peak_anon_mb": anon.mb,
            "batch_rows": engine.stats.batch_rows,
            "parts_hash": parts_hash(parts),
            "report": {k: v for k, v in output.report.items() if k != "html"},
        }
    )


def _in_memory(src: list[str], held: str, work: str, head: int, queue: Any) -> None:
    import polars as pl

    from tamis.pipelines.engines.parts import parts_hash, write_frame_parts
    from tamis.pipelines.steps.leakage import Leakage

    inputs = {"input": pl.scan_parquet(src).head(head), "against": [pl.scan_parquet(held)]}
    with Timer() as t:
        output = Leakage().run(inputs, _params(), _ctx(Path(work)))
    data = output.frames["data"]
    queue.put(
        {
            "seconds": t.seconds,
            "peak_rss_mb": rss_kb("VmHWM") / 1024,
            "parts_hash": parts_hash(write_frame_parts(data, Path(work) / "mem")),  # type: ignore[arg-type]
            "report": {k: v for k, v in output.report.items() if k != "html"},
        }
    )


def _duckdb_exact(src: list[str], held: str) -> dict[str, int]:
    import duckdb

    con = duckdb.connect()
    con.sql("SET threads = 2")
    files = ", ".join(f"'{s}'" for s in src)
    inp = con.sql(
        f"SELECT count(*) FROM read_parquet([{files}]) WHERE text IN "
        f"(SELECT text FROM read_parquet('{held}'))"
    ).fetchall()
    ev = con.sql(
        f"SELECT count(*) FROM read_parquet('{held}') WHERE text IN "
        f"(SELECT text FROM read_parquet([{files}]))"
    ).fetchall()
    return {"input_rows": int(inp[0][0]), "eval_rows": int(ev[0][0])}


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    rep = report["against"]["against_0"]
    return {
        "rows_in": report["rows_in"],
        "removed": report["removed"],
        "exact_input_rows": rep["exact"]["input_rows"],
        "exact_eval_rows": rep["exact"]["eval_rows"],
        "ngram_contaminated_eval_items": rep["ngram"]["contaminated_eval_items"],
        "ngram_input_rows_carrying": rep["ngram"]["input_rows_carrying"],
        "near_input_rows": rep["near"]["input_rows"],
        "near_eval_rows": rep["near"]["eval_rows"],
        "near_pairs": rep["near"]["pairs"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--memory-limit", default="256MB", help="the bounded engine's limit")
    ap.add_argument("--corpus-factor", type=float, default=8.0, help="corpus bytes / limit")
    ap.add_argument("--corpus", type=Path, default=None, help="reuse/keep the corpus at this path")
    ap.add_argument("--held", type=int, default=3000, help="documents in the held-out slice")
    ap.add_argument("--fitting", type=int, default=20_000, help="documents compared in memory")
    ap.add_argument("--tmp", type=Path, required=True, help="work dir (deleted at the end)")
    ap.add_argument("--ray", action="store_true", help="also run the step on the Ray engine")
    args = ap.parse_args()
    from tamis.pipelines.engines.memory import parse_size

    limit = parse_size(args.memory_limit)
    work = args.tmp
    work.mkdir(parents=True, exist_ok=True)
    corpus = args.corpus or work / "corpus.jsonl"
    try:
        if not corpus.exists():
            generate(corpus, int(limit * args.corpus_factor), seed=1)
        imported = in_fresh_process(_import, str(corpus), str(work), args.memory_limit)
        src = [str(work / "src" / p) for p in imported["parts"]]
        held = work / "held.parquet"
        _held([Path(s) for s in src], args.held, held)
        load = os.getloadavg()
        run = in_fresh_process(_bounded, src, str(held), str(work / "b"), args.memory_limit, 0)
        emit(
            {
                "bench": "leakage_out_of_core",
                "memory_limit_mb": limit / 1e6,
                "corpus_mb": corpus.stat().st_size / 1e6,
                "import_seconds": round(imported["seconds"], 1),
                "seconds": round(run["seconds"], 1),
                "docs_per_s": round(run["report"]["rows_in"] / run["seconds"], 1),
                "peak_rss_mb": round(run["peak_rss_mb"], 1),
                "peak_anon_mb": round(run["peak_anon_mb"], 1),
                "rss_before_mb": round(run["rss_before_mb"], 1),
                "batch_rows": run["batch_rows"],
                "parts": run["parts"],
                **_summary(run["report"]),
                "duckdb_exact": _duckdb_exact(src, str(held)),
                "load_avg": [round(x, 1) for x in (*load, *os.getloadavg())],
                "time": time.strftime("%H:%M:%S", time.gmtime()),
            }
        )
        if args.ray:
            load = os.getloadavg()
            ray = in_fresh_process(_ray, src, str(held), str(work / "r"), args.memory_limit)
            emit(
                {
                    "bench": "leakage_ray_vs_local",
                    "docs": run["report"]["rows_in"],
                    "local_seconds": round(run["seconds"], 1),
                    "ray_seconds": round(ray["seconds"], 1),
                    "ray_over_local": round(ray["seconds"] / run["seconds"], 2),
                    "local_cpu_seconds": round(run["cpu_seconds"], 1),
                    "ray_cpu_seconds": round(ray["cpu_seconds"], 1),
                    "ray_cold_seconds": round(ray["cold_seconds"], 1),
                    "ray_start_seconds": round(ray["ray_start_seconds"], 1),
                    "ray_stages": ray["stages"],
                    "ray_chunk_mb": ray["chunk_mb"],
                    "ray_driver_peak_anon_mb": round(ray["driver_peak_anon_mb"], 1),
                    "batch_rows": ray["batch_rows"],
                    "same_parts_hash": ray["parts_hash"] == run["parts_hash"],
                    "same_report": ray["report"] == run["report"],
                    "load_avg": [round(x, 1) for x in (*load, *os.getloadavg())],
                }
            )
        if args.fitting:
            a = in_fresh_process(_in_memory, src, str(held), str(work / "m"), args.fitting)
            b = in_fresh_process(
                _bounded, src, str(held), str(work / "f"), args.memory_limit, args.fitting
            )
            emit(
                {
                    "bench": "leakage_fitting_subset",
                    "docs": args.fitting,
                    "same_parts_hash": a["parts_hash"] == b["parts_hash"],
                    "same_report": a["report"] == b["report"],
                    "in_memory_seconds": round(a["seconds"], 1),
                    "bounded_seconds": round(b["seconds"], 1),
                    "in_memory_peak_rss_mb": round(a["peak_rss_mb"], 1),
                    "bounded_peak_rss_mb": round(b["peak_rss_mb"], 1),
                    **_summary(b["report"]),
                }
            )
    finally:
        for d in ("src", "b", "f", "m", "r", "spill"):
            shutil.rmtree(work / d, ignore_errors=True)


if __name__ == "__main__":
    main()
