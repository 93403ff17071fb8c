"""Out of core: a JSONL corpus several times the memory limit through the bounded engine, and near
dedup (tamis vs datatrove's local MinHash pipeline) on a corpus that fits in memory.

1. Stream (bounded engine, no store): a web-like JSONL corpus of `--corpus-factor` x
   `--memory-limit` bytes (`_corpus.generate`: ~10% exact and ~10% near copies planted) is read
   into Parquet parts by tamis' source reader (`import_source_parts`, as a build does), then
   `normalize` (BoundedEngine.run_map, parts to parts) then `dedup`
   on `text` (BoundedEngine.run_keyed, hash-partitioned spill), in a fresh process whose peak RSS
   (VmHWM, the whole process, which counts the pages of the memory-mapped input too) and peak
   anonymous memory (RssAnon, sampled) are compared with the limit + 15%. Reported: time, rows,
   spill.
2. Same content: on the first `--near-docs` documents, normalize -> dedup in memory (the steps'
   `run`) and through the bounded engine give parts with the same content hash (`parts_hash`).
3. Near dedup on those documents, each in a fresh process: tamis in memory (the source parts read
   whole, `near_dedup_text`, Parquet written) and through the bounded engine
   (`near_dedup_text_bounded` over the parts, `--near-memory-limit`), both after the JSONL is
   streamed into Parquet parts by the source reader as a build does (timed apart: `*_seconds` is
   the step, `*_total_seconds` includes the import); vs datatrove's 4-stage MinHash pipeline with
   its LocalPipelineExecutor on the same JSONL (split in `--dt-workers` shards; same word 5-grams,
   bands x rows 21 x 6 = tamis' defaults at threshold 0.8; datatrove has no verification step, so
   its threshold is the one implied by the bands). docs/s, MB/s, peak RSS of each and the ratios
   (bounded vs in memory on the step; tamis vs datatrove end to end from the JSONL); recall of each
   against brute-force Jaccard (every pair of the first `--sample` documents with word 5-gram
   Jaccard >= 0.8; a pair is found when both documents end in one cluster), over all such pairs
   and over the near (not identical) ones; the load average at the start and the end.

datatrove's venv needs its `processing` extra (regex, tokenizers, orjson) and, for datatrove
0.10.1, `xxhash<4` (xxhash 4 refuses the str shingles datatrove hashes).

    nice -n 10 .venv/bin/python benchmarks/bench_out_of_core.py --memory-limit 256MB
    nice -n 10 .venv/bin/python benchmarks/bench_out_of_core.py --memory-limit 1.5GB --corpus-factor 8
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import AnonPeak, Timer, emit, in_fresh_process, rss_kb  # noqa: E402
from _corpus import generate  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_DATATROVE = Path("/work/dtvenv/bin/python")
BANDS, ROWS, NGRAM, THRESHOLD = 21, 6, 5, 0.8


# ---- 1 and 2: the bounded engine ------------------------------------------------------------
def _source_parts(corpus: Path, engine: Any, out: Path) -> Any:
    """The JSONL source streamed into Parquet parts by tamis' source reader (as a build does)."""
    from types import SimpleNamespace

    import polars as pl

    from tamis.pipelines.sources.readers import import_source_parts

    src = SimpleNamespace(options={})
    spec = SimpleNamespace(
        sources={"corpus": src},
        source_path=lambda name: corpus,
        source_format=lambda name: "jsonl",
        file=str(corpus),
    )
    read = import_source_parts(spec, "corpus", out, engine)
    return pl.scan_parquet([out / p["path"] for p in read.parts])


def _normalize_dedup(
    corpus: Path, work: Path, limit: str, in_memory: bool = False
) -> tuple[list, Any, Any]:
    """source -> normalize -> dedup(text); returns (parts, engine or None, dedup report)."""
    import polars as pl

    from tamis.curate.dedup.exact import DedupConfig
    from tamis.pipelines.engines.local import BoundedEngine
    from tamis.pipelines.engines.memory import parse_size
    from tamis.pipelines.engines.parts import write_frame_parts
    from tamis.pipelines.steps.base import StepContext
    from tamis.pipelines.steps.dedup import Dedup
    from tamis.pipelines.steps.normalize import Normalize, NormalizeParams

    ctx = StepContext(step="s", pipeline="bench", seed=0, artifacts_dir=work / "art")
    ctx.artifacts_dir.mkdir(parents=True, exist_ok=True)
    dedup = DedupConfig(columns=["text"])
    normalize = NormalizeParams.model_validate({})
    if in_memory:
        source = pl.read_ndjson(corpus).lazy()
        norm = Normalize().run({"input": source}, normalize, ctx).frames["data"]
        out = Dedup().run({"input": norm.lazy()}, dedup, ctx)
        frame = out.frames["data"]
        frame = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
        return write_frame_parts(frame, work / "mem"), None, out.report
    engine = BoundedEngine(memory_limit=parse_size(limit), spill_root=work / "spill")
    source = _source_parts(corpus, engine, work / "src")
    norm_parts, _ = engine.run_map(Normalize(), {"input": source}, normalize, ctx, work / "n")
    normalized = pl.scan_parquet([work / "n" / p["path"] for p in norm_parts])
    parts, out = engine.run_keyed(Dedup(), {"input": normalized}, dedup, ctx, work / "d")
    return parts, engine, out.report


def _stream(corpus: str, work: str, limit: str, queue: Any) -> None:

    with Timer() as t, AnonPeak() as anon:
        parts, engine, report = _normalize_dedup(Path(corpus), Path(work), limit)
    queue.put(
        {
            "seconds": t.seconds,
            "rows_in": report.get("rows_in"),
            "rows_out": sum(p["rows"] for p in parts),
            "parts": len(parts),
            "peak_rss_mb": rss_kb("VmHWM") / 1024,
            "peak_anon_mb": anon.mb,
            "spill_bytes": engine.stats.peak_spill_bytes,
            "batch_rows": engine.stats.batch_rows,
            "buckets": engine.stats.buckets,
        }
    )


def _same_hash(corpus: str, work: str, limit: str, queue: Any) -> None:

    from tamis.pipelines.engines.parts import parts_hash

    mem, _, _ = _normalize_dedup(Path(corpus), Path(work) / "m", limit, in_memory=True)
    bounded, _, _ = _normalize_dedup(Path(corpus), Path(work) / "b", limit)
    queue.put({"in_memory": parts_hash(mem), "bounded": parts_hash(bounded)})


# ---- 3: near dedup ----------------------------------------------------------------------------
def _near_config() -> Any:
    from tamis.curate.dedup.near import NearDedupConfig

    return NearDedupConfig(column="text", ngram=NGRAM, threshold=THRESHOLD, bands=BANDS, rows=ROWS)


def _save_clusters(clusters: Any, n: int, path: Path) -> None:
    members = clusters.select("cluster_id", "rows").explode("rows")
    ids = np.full(n, -1, dtype=np.int64)
    ids[members["rows"].to_numpy()] = members["cluster_id"].to_numpy()
    np.save(path, ids)


def _warm_kernels() -> None:
    """Compile (or load from numba's cache) the near dedup kernels outside the timed region."""
    import polars as pl

    from tamis.curate.dedup.near import near_dedup_text

    near_dedup_text(pl.DataFrame({"text": ["a b c d e f", "a b c d e g"]}), _near_config())


def _tamis_near(corpus: str, work: str, queue: Any) -> None:
    """In memory, as a build runs it: the JSONL streamed into Parquet parts by the source reader
    (timed apart), then the step: read the parts, `near_dedup_text`, write the kept rows."""

    from tamis.curate.dedup.near import near_dedup_text
    from tamis.pipelines.engines.local import BoundedEngine
    from tamis.pipelines.engines.memory import parse_size

    _warm_kernels()
    w = Path(work)
    engine = BoundedEngine(memory_limit=parse_size("1GB"), spill_root=w / "spill")
    with Timer() as t_import:
        source = _source_parts(Path(corpus), engine, w / "src")
    with Timer() as t:
        df = source.collect()
        out, report, clusters, _ = near_dedup_text(df, _near_config())
        out.write_parquet(w / "near_kept.parquet")
    _save_clusters(clusters, df.height, w / "tamis_clusters.npy")
    shutil.rmtree(w / "src", ignore_errors=True)
    queue.put(
        {
            "seconds": t.seconds,
            "total_seconds": t_import.seconds + t.seconds,
            "cpu_seconds": t.cpu_seconds,
            "docs": df.height,
            "removed": df.height - out.height,
            "peak_rss_mb": rss_kb("VmHWM") / 1024,
        }
    )


def _tamis_near_bounded(corpus: str, work: str, limit: str, queue: Any) -> None:
    """Bounded engine, as a build runs it: the JSONL streamed into Parquet parts by the source
    reader (timed apart), then the step: `near_dedup_text_bounded` (spill under the limit) writing
    the kept rows to parts."""

    from tamis.curate.dedup.near_bounded import near_dedup_text_bounded
    from tamis.pipelines.engines.local import BoundedEngine
    from tamis.pipelines.engines.memory import parse_size

    _warm_kernels()
    w = Path(work)
    engine = BoundedEngine(memory_limit=parse_size(limit), spill_root=w / "spill")
    with Timer() as t_import:
        source = _source_parts(Path(corpus), engine, w / "src")
    with Timer() as t, AnonPeak() as anon:
        parts, report, clusters, _ = near_dedup_text_bounded(
            engine, source, _near_config(), out=w / "kept"
        )
    rows_in = report["rows_in"]
    _save_clusters(clusters, rows_in, w / "bounded_clusters.npy")
    shutil.rmtree(w / "src", ignore_errors=True)
    shutil.rmtree(w / "kept", ignore_errors=True)
    queue.put(
        {
            "seconds": t.seconds,
            "total_seconds": t_import.seconds + t.seconds,
            "cpu_seconds": t.cpu_seconds,
            "docs": rows_in,
            "removed": rows_in - sum(p["rows"] for p in parts),
            "peak_rss_mb": rss_kb("VmHWM") / 1024,
            "peak_anon_mb": anon.mb,
            "batch_rows": engine.stats.batch_rows,
            "buckets": engine.stats.buckets,
        }
    )


def _datatrove(python: Path, shards: Path, work: Path, workers: int) -> dict[str, Any]:
    cmd = [str(python), str(HERE / "_datatrove_minhash.py"), "--input", str(shards)]
    cmd += ["--work", str(work), "--workers", str(workers), "--ngram", str(NGRAM)]
    cmd += ["--bands", str(BANDS), "--rows", str(ROWS)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
    if done.returncode:
        raise RuntimeError(f"datatrove failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    ids, cl = np.load(result.pop("clusters"))
    clusters = np.full(int(ids.max()) + 1, -1, dtype=np.int64)
    clusters[ids] = cl
    result["cluster_of"] = clusters
    return result


def _recall(truth: set[tuple[int, int]], cluster_of: np.ndarray) -> float:
    if not truth:
        return float("nan")
    pairs = np.array(sorted(truth), dtype=np.int64)
    a, b = cluster_of[pairs[:, 0]], cluster_of[pairs[:, 1]]
    return float(((a == b) & (a >= 0)).mean())


def _quality(truth: set[tuple[int, int]], texts: list[str], cluster_of: np.ndarray) -> dict:
    near = {(i, j) for i, j in truth if texts[i] != texts[j]}
    return {"recall": _recall(truth, cluster_of), "recall_near": _recall(near, cluster_of)}


def _write_fitting(corpus: Path, docs: int, work: Path, shards: int) -> tuple[Path, Path]:
    """The first `docs` lines as one JSONL and as `shards` JSONL shards (for datatrove)."""
    near = work / "near.jsonl"
    shard_dir = work / "shards"
    shard_dir.mkdir()
    per = -(-docs // shards)
    with ExitStack() as stack:
        outs = [
            stack.enter_context(open(shard_dir / f"s{i:03d}.jsonl", "w")) for i in range(shards)
        ]
        src = stack.enter_context(open(corpus))
        dst = stack.enter_context(open(near, "w"))
        for i, line in enumerate(src):
            if i >= docs:
                break
            dst.write(line)
            outs[i // per].write(line)
    return near, shard_dir


def _rates(prefix: str, run: dict[str, Any], mb: float) -> dict[str, Any]:
    """Step seconds (from the source parts, for tamis), docs/s and MB/s of the step, and the
    total from the JSONL (the source import included)."""
    return {
        f"{prefix}_seconds": round(run["seconds"], 2),
        f"{prefix}_total_seconds": round(run.get("total_seconds", run["seconds"]), 2),
        f"{prefix}_docs_per_s": round(run["docs"] / run["seconds"], 1),
        f"{prefix}_mb_per_s": round(mb / run["seconds"], 2),
        f"{prefix}_cpu_seconds": round(run["cpu_seconds"], 1),
        f"{prefix}_peak_rss_mb": round(run["peak_rss_mb"], 1),
        f"{prefix}_removed": run["removed"],
    }


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def near_section(args: argparse.Namespace, corpus: Path, work: Path) -> dict[str, Any]:
    from bench_near_dedup import ground_truth

    near, shards = _write_fitting(corpus, args.near_docs, work, args.dt_workers)
    mb = near.stat().st_size / 1e6
    env_threads = os.environ.get("POLARS_MAX_THREADS")
    load_start = _load()
    tamis = in_fresh_process(_tamis_near, str(near), str(work))
    print(f"tamis near (in memory): {tamis}", file=sys.stderr)
    (work / "bounded").mkdir()
    limit = args.near_memory_limit or args.memory_limit
    bounded = in_fresh_process(_tamis_near_bounded, str(near), str(work / "bounded"), limit)
    print(f"tamis near (bounded, {limit}): {bounded}", file=sys.stderr)
    tamis_clusters = np.load(work / "tamis_clusters.npy")
    bounded_clusters = np.load(work / "bounded" / "bounded_clusters.npy")
    dt: dict[str, Any] = {}
    if args.datatrove_python and Path(args.datatrove_python).exists():
        (work / "dt").mkdir()
        dt = _datatrove(Path(args.datatrove_python), shards, work / "dt", args.dt_workers)
        print(f"datatrove: { {k: v for k, v in dt.items() if k != 'cluster_of'} }", file=sys.stderr)
    else:
        print(
            f"datatrove baseline skipped: no interpreter at {args.datatrove_python!r} "
            "(give --datatrove-python PATH of a venv with `pip install datatrove`)",
            file=sys.stderr,
        )
    load_end = _load()
    with open(near) as fh:
        texts = [json.loads(line)["text"] for _, line in zip(range(args.sample), fh, strict=False)]
    t0 = time.perf_counter()
    truth = ground_truth(texts)
    truth_seconds = time.perf_counter() - t0
    n = len(texts)
    tq = _quality(truth, texts, tamis_clusters)
    bq = _quality(truth, texts, bounded_clusters)
    record: dict[str, Any] = {
        "near_docs": tamis["docs"],
        "near_mb": round(mb, 1),
        "near_baseline": f"datatrove {args.dt_workers} workers" if dt else "skipped",
        "near_sample_docs": n,
        "near_true_pairs": len(truth),
        "near_near_pairs": sum(texts[i] != texts[j] for i, j in truth),
        "near_truth_seconds": round(truth_seconds, 1),
        **_rates("near_tamis", tamis, mb),
        "near_tamis_recall": round(tq["recall"], 4),
        "near_tamis_recall_near": round(tq["recall_near"], 4),
        **_rates("near_bounded", bounded, mb),
        "near_bounded_limit": limit,
        "near_bounded_peak_anon_mb": round(bounded["peak_anon_mb"], 1),
        "near_bounded_batch_rows": bounded["batch_rows"],
        "near_bounded_buckets": bounded["buckets"],
        "near_bounded_recall": round(bq["recall"], 4),
        "near_bounded_recall_near": round(bq["recall_near"], 4),
        "near_bounded_same_clusters_as_in_memory": bool((bounded_clusters == tamis_clusters).all()),
        "near_ratio_bounded_over_in_memory": round(tamis["seconds"] / bounded["seconds"], 3),
        "near_total_ratio_bounded_over_in_memory": round(
            tamis["total_seconds"] / bounded["total_seconds"], 3
        ),
        "polars_max_threads": env_threads,
        "load_avg_start": load_start,
        "load_avg_end": load_end,
    }
    if dt:
        dq = _quality(truth, texts, dt["cluster_of"])
        record.update(
            {
                **_rates("near_baseline", dt, mb),
                # end to end from the JSONL (tamis' source import included)
                "near_ratio_tamis_over_baseline": round(dt["seconds"] / tamis["total_seconds"], 3),
                "near_ratio_bounded_over_baseline": round(
                    dt["seconds"] / bounded["total_seconds"], 3
                ),
                "near_cpu_ratio_bounded_over_baseline": round(
                    dt["cpu_seconds"] / bounded["cpu_seconds"], 3
                ),
                "near_baseline_recall": round(dq["recall"], 4),
                "near_baseline_recall_near": round(dq["recall_near"], 4),
                "near_baseline_config": dt["config"],
            }
        )
    return record


def stream_section(args: argparse.Namespace, corpus: Path, work: Path) -> dict[str, Any]:
    from tamis.pipelines.engines.memory import parse_size

    limit = parse_size(args.memory_limit)
    (work / "stream").mkdir()
    s = in_fresh_process(_stream, str(corpus), str(work / "stream"), args.memory_limit)
    shutil.rmtree(work / "stream", ignore_errors=True)
    print(f"stream: {s}", file=sys.stderr)
    return {
        "stream_seconds": round(s["seconds"], 1),
        "stream_mb_per_s": round(corpus.stat().st_size / 1e6 / s["seconds"], 2),
        "stream_rows_in": s["rows_in"],
        "stream_rows_out": s["rows_out"],
        "stream_parts": s["parts"],
        "stream_limit_mb": round(limit / 2**20, 1),
        "stream_peak_rss_mb": round(s["peak_rss_mb"], 1),
        "stream_peak_anon_mb": round(s["peak_anon_mb"], 1),
        "stream_rss_over_limit": round(s["peak_rss_mb"] * 2**20 / limit, 3),
        "stream_anon_over_limit": round(s["peak_anon_mb"] * 2**20 / limit, 3),
        "stream_anon_within_limit_plus_15pct": s["peak_anon_mb"] * 2**20 <= 1.15 * limit,
        "stream_spill_bytes": s["spill_bytes"],
        "stream_batch_rows": s["batch_rows"],
        "stream_buckets": s["buckets"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--memory-limit", default="256MB", help="the bounded engine's limit")
    ap.add_argument("--corpus-factor", type=float, default=8.0, help="corpus bytes / limit")
    ap.add_argument("--corpus", type=Path, default=None, help="reuse/keep the corpus at this path")
    ap.add_argument("--near-docs", type=int, default=200_000, help="documents for near dedup")
    ap.add_argument(
        "--near-memory-limit",
        default=None,
        help="the bounded engine's limit for near dedup (default: --memory-limit)",
    )
    ap.add_argument("--sample", type=int, default=20_000, help="documents for brute-force truth")
    ap.add_argument("--datatrove-python", default=str(DEFAULT_DATATROVE), help="datatrove's python")
    ap.add_argument("--dt-workers", type=int, default=2, help="datatrove workers (and shards)")
    ap.add_argument("--tmp", type=Path, default=None, help="work dir (default: a new tmp dir)")
    ap.add_argument(
        "--skip",
        choices=["stream", "hash", "near"],
        action="append",
        default=[],
        help="skip a section (repeatable)",
    )
    args = ap.parse_args()

    from tamis.pipelines.engines.memory import parse_size

    target = int(parse_size(args.memory_limit) * args.corpus_factor)
    work = Path(tempfile.mkdtemp(prefix="bench_ooc_", dir=args.tmp))
    try:
        corpus = args.corpus or work / "corpus.jsonl"
        t0 = time.perf_counter()
        if not corpus.exists() or corpus.stat().st_size < target:
            counts = generate(corpus, target, seed=0)
            print(f"corpus: {counts}", file=sys.stderr)
        record: dict[str, Any] = {
            "bench": "out_of_core",
            "memory_limit": args.memory_limit,
            "corpus_gb": round(corpus.stat().st_size / 1e9, 3),
            "generate_seconds": round(time.perf_counter() - t0, 1),
        }
        if "stream" not in args.skip:
            record.update(stream_section(args, corpus, work))
        if "hash" not in args.skip:
            (work / "hash").mkdir()
            fit, _ = _write_fitting(corpus, min(args.near_docs, 50_000), work / "hash", 1)
            h = in_fresh_process(_same_hash, str(fit), str(work / "hash"), args.memory_limit)
            shutil.rmtree(work / "hash", ignore_errors=True)
            record["same_hash_in_memory_vs_bounded"] = h["in_memory"] == h["bounded"]
        if "near" not in args.skip:
            record.update(near_section(args, corpus, work))
        emit(record)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
