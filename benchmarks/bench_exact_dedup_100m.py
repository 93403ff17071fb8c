"""Exact dedup of N rows x 10 columns under a memory limit: tamis' bounded engine vs DuckDB DISTINCT.

Data: `--rows` rows (default 100M) of 10 columns (5 integer, 5 string) written as Parquet parts of
`--part-rows` rows, chunk by chunk (never held). Every row is a function of a hidden key; about
`--dup-share` of the rows reuse the key of an earlier row, so they are byte-identical duplicates and
the true number of distinct rows is known in advance.

Both sides read the same parts and write their output as Parquet, each in a fresh process whose
peak RSS (VmHWM, the whole process) and peak anonymous memory (RssAnon, sampled: VmHWM also
counts memory-mapped file pages) are reported:
- tamis: the `dedup` step (DedupConfig defaults: all columns, keep first, drop) through
  `BoundedEngine.run_keyed` with `--memory-limit` (hash-partitioned spill in a tmp dir);
- DuckDB: `COPY (SELECT DISTINCT * FROM read_parquet(...)) TO ...` with `SET memory_limit`,
  `temp_directory` in a tmp dir and `--threads`.
Rows out must agree (and equal the planted number of distinct rows).

    nice -n 10 .venv/bin/python benchmarks/bench_exact_dedup_100m.py --rows 10_000_000
    nice -n 10 .venv/bin/python benchmarks/bench_exact_dedup_100m.py --rows 100_000_000 --keep-data DIR
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import AnonPeak, Timer, emit, in_fresh_process, rss_kb  # noqa: E402

_MULT = np.uint64(0x9E3779B97F4A7C15)


def _mix(k: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64-style hash of the keys (uint64), one stream per salt."""
    z = k.astype(np.uint64) * _MULT + np.uint64((salt * 0xBF58476D1CE4E5B9) % 2**64)
    z ^= z >> np.uint64(31)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(29)
    return z


def rows_of(keys: np.ndarray) -> Any:
    """The 10 columns of the rows with these keys (the same key gives the same row)."""
    import polars as pl

    h = [_mix(keys, s) for s in range(6)]
    return pl.DataFrame(
        {
            "event_id": (h[0] >> np.uint64(1)).astype(np.int64),
            "user_id": (h[1] % np.uint64(5_000_000)).astype(np.int64),
            "amount_cents": (h[2] % np.uint64(1_000_000)).astype(np.int64),
            "ts": (1_700_000_000 + (h[3] % np.uint64(30_000_000))).astype(np.int64),
            "status": (h[4] % np.uint64(7)).astype(np.int64),
            "k": keys,  # helper for the string columns, dropped below
        }
    ).select(
        "event_id",
        "user_id",
        "amount_cents",
        "ts",
        "status",
        pl.format("user_{}", pl.col("user_id")).alias("user"),
        pl.format(
            "https://shop{}.example/item/{}", pl.col("k") % 997, pl.col("amount_cents")
        ).alias("url"),
        pl.format("{}-{}", pl.col("status"), pl.col("event_id") % 100_000).alias("session"),
        pl.lit(["eu-west", "us-east", "ap-south", "sa-east"])
        .list.get((pl.col("k") % 4).cast(pl.Int64))
        .alias("region"),
        pl.format("agent/{}.{}", pl.col("user_id") % 50, pl.col("k") % 13).alias("agent"),
    )


def _is_copy(pos: np.ndarray, share: float) -> np.ndarray:
    """Whether the row at each position copies an earlier row (a fixed function of the position)."""
    u = (_mix(pos, 99) >> np.uint64(11)).astype(np.float64) / 2.0**53
    return (u < share) & (pos > 0)


def generate(directory: Path, rows: int, part_rows: int, dup_share: float, seed: int) -> int:
    """Write the parts; return the number of distinct rows.

    An original row's key is its position; a copy takes the key of a uniformly drawn earlier
    original (drawn, then stepped back past copies), so no index of earlier keys is kept.
    """
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    distinct = 0
    for i, start in enumerate(range(0, rows, part_rows)):
        n = min(part_rows, rows - start)
        pos = np.arange(start, start + n, dtype=np.uint64)
        copy = _is_copy(pos, dup_share)
        keys = pos.copy()
        src = (rng.random(int(copy.sum())) * pos[copy]).astype(np.uint64)
        while True:
            back = _is_copy(src, dup_share)
            if not back.any():
                break
            src[back] -= np.uint64(1)
        keys[copy] = src
        distinct += int((~copy).sum())
        rows_of(keys).write_parquet(directory / f"part-{i:05d}.parquet", row_group_size=128 * 1024)
    return distinct


def _tamis(data: str, out: str, spill: str, limit: str, queue: Any) -> None:
    import polars as pl

    from tamis.curate.dedup.exact import DedupConfig
    from tamis.pipelines.engines.local import BoundedEngine
    from tamis.pipelines.engines.memory import parse_size
    from tamis.pipelines.steps.base import StepContext
    from tamis.pipelines.steps.dedup import Dedup

    engine = BoundedEngine(memory_limit=parse_size(limit), spill_root=Path(spill))
    ctx = StepContext(step="dedup", pipeline="bench", seed=0, artifacts_dir=Path(out) / "art")
    ctx.artifacts_dir.mkdir(parents=True, exist_ok=True)
    source = pl.scan_parquet(f"{data}/*.parquet")
    with Timer() as t, AnonPeak() as anon:
        parts, result = engine.run_keyed(
            Dedup(), {"input": source}, DedupConfig(), ctx, Path(out) / "parts"
        )
    queue.put(
        {
            "seconds": t.seconds,
            "cpu_seconds": t.cpu_seconds,
            "rows_out": sum(p["rows"] for p in parts),
            "peak_rss_mb": rss_kb("VmHWM") / 1024,
            "peak_anon_mb": anon.mb,
            "spill_bytes": engine.stats.peak_spill_bytes,
            "buckets": engine.stats.buckets,
            "spill_files": engine.stats.spill_files,
            "parts": len(parts),
            "removed": result.report.get("removed"),
        }
    )


def _duckdb(data: str, out: str, spill: str, limit: str, threads: int, queue: Any) -> None:
    import duckdb
    import polars as pl

    con = duckdb.connect()
    con.execute(f"SET memory_limit='{limit}'")
    con.execute(f"SET temp_directory='{spill}'")
    con.execute(f"SET threads={threads}")
    con.execute("SET preserve_insertion_order=false")
    target = Path(out) / "distinct.parquet"
    try:
        with Timer() as t, AnonPeak() as anon:
            con.execute(
                f"COPY (SELECT DISTINCT * FROM read_parquet('{data}/*.parquet')) "
                f"TO '{target}' (FORMAT parquet)"
            )
    except duckdb.Error as exc:  # e.g. OutOfMemoryException under the limit: a result too
        queue.put({"error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"})
        return
    rows_out = pl.scan_parquet(target).select(pl.len()).collect().item()
    spill_bytes = sum(f.stat().st_size for f in Path(spill).rglob("*") if f.is_file())
    queue.put(
        {
            "seconds": t.seconds,
            "cpu_seconds": t.cpu_seconds,
            "rows_out": int(rows_out),
            "peak_rss_mb": rss_kb("VmHWM") / 1024,
            "peak_anon_mb": anon.mb,
            "spill_bytes_left": spill_bytes,
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=lambda s: int(float(s)), default=100_000_000, help="rows")
    ap.add_argument("--part-rows", type=int, default=1_000_000, help="rows per input Parquet part")
    ap.add_argument("--dup-share", type=float, default=0.10, help="share of duplicate rows")
    ap.add_argument("--memory-limit", default="2GB", help="limit of both engines (e.g. 2GB)")
    ap.add_argument("--threads", type=int, default=2, help="DuckDB threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tmp", type=Path, default=None, help="work dir (default: a new tmp dir)")
    ap.add_argument("--keep-data", type=Path, default=None, help="reuse/keep the input parts here")
    ap.add_argument("--skip", choices=["tamis", "duckdb"], default=None, help="skip one side")
    args = ap.parse_args()
    # as the `tamis` command does (tamis/__init__.py): Polars' jemalloc returns freed pages at
    # once; the spawned sides inherit it (DuckDB has its own allocator)
    os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")

    work = Path(tempfile.mkdtemp(prefix="bench_dedup100m_", dir=args.tmp))
    try:
        data = args.keep_data or work / "data"
        marker = data / "_DISTINCT"
        if marker.exists():
            distinct = int(marker.read_text())
            gen_seconds = 0.0
        else:
            t0 = time.perf_counter()
            distinct = generate(data, args.rows, args.part_rows, args.dup_share, args.seed)
            gen_seconds = time.perf_counter() - t0
            marker.write_text(str(distinct))
        data_bytes = sum(f.stat().st_size for f in data.glob("*.parquet"))
        print(
            f"data: {args.rows:,} rows ({distinct:,} distinct), {data_bytes / 1e9:.2f} GB parquet",
            file=sys.stderr,
        )
        sides: dict[str, dict[str, Any]] = {}
        if args.skip != "tamis":
            (work / "t_out").mkdir()
            sides["tamis"] = in_fresh_process(
                _tamis, str(data), str(work / "t_out"), str(work / "t_spill"), args.memory_limit
            )
            shutil.rmtree(work / "t_out", ignore_errors=True)
            print(f"tamis: {sides['tamis']}", file=sys.stderr)
        if args.skip != "duckdb":
            (work / "d_out").mkdir()
            (work / "d_spill").mkdir()
            sides["duckdb"] = in_fresh_process(
                _duckdb,
                str(data),
                str(work / "d_out"),
                str(work / "d_spill"),
                args.memory_limit,
                args.threads,
            )
            print(f"duckdb: {sides['duckdb']}", file=sys.stderr)
        t, d = sides.get("tamis", {}), sides.get("duckdb", {})
        record: dict[str, Any] = {
            "bench": "exact_dedup_100m",
            "rows": args.rows,
            "columns": 10,
            "input_gb": round(data_bytes / 1e9, 3),
            "memory_limit": args.memory_limit,
            "generate_seconds": round(gen_seconds, 1),
            "distinct_planted": distinct,
            "baseline": f"duckdb SELECT DISTINCT (threads={args.threads})",
            "baseline_seconds": round(d.get("seconds", float("nan")), 2),
            "tamis_seconds": round(t.get("seconds", float("nan")), 2),
            "ratio_baseline_over_tamis": round(
                d.get("seconds", float("nan")) / t.get("seconds", float("nan")), 3
            ),
            "baseline_peak_rss_mb": round(d.get("peak_rss_mb", float("nan")), 1),
            "tamis_peak_rss_mb": round(t.get("peak_rss_mb", float("nan")), 1),
            "baseline_peak_anon_mb": round(d.get("peak_anon_mb", float("nan")), 1),
            "tamis_peak_anon_mb": round(t.get("peak_anon_mb", float("nan")), 1),
            "baseline_rows_out": d.get("rows_out"),
            "tamis_rows_out": t.get("rows_out"),
            "rows_out_agree": d.get("rows_out") == t.get("rows_out") == distinct,
            "baseline_error": d.get("error"),
            "tamis_spill_bytes": t.get("spill_bytes"),
            "tamis_buckets": t.get("buckets"),
            "tamis_spill_files": t.get("spill_files"),
            "baseline_spill_bytes_left": d.get("spill_bytes_left"),
        }
        emit(record)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
