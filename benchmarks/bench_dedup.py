"""Exact dedup, 10M rows x 10 columns (~1% duplicates): tamis vs DuckDB SELECT DISTINCT.

Each method runs in its own fresh process on the same data (built there from the same seed, then
handed over as the same Arrow table), so peak memory is measured per method: the peak RSS of the
process above its RSS once the data was built. tamis includes its cluster report.

    .venv/bin/python benchmarks/bench_dedup.py [--rows 10000000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, emit, in_fresh_process, peak_mb_above, rss_kb, versus  # noqa: E402


def make_table(rows: int, dup_share: float = 0.01, seed: int = 0) -> Any:
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    n_dup = int(rows * dup_share)
    base = rows - n_dup
    src = np.concatenate([np.arange(base), rng.integers(0, base, n_dup)])
    rng.shuffle(src)
    words = np.array([f"w{i:05d}" for i in range(5000)], dtype=object)
    gen = np.random.default_rng(seed + 1)
    cols = {
        "id": rng.permutation(base).astype(np.int64),
        "a": gen.integers(0, 100, base),
        "b": gen.integers(0, 1_000_000, base),
        "c": gen.integers(-50, 50, base),
        "d": gen.integers(0, 2, base),
        "e": gen.integers(0, 10**9, base),
        "x": np.round(gen.normal(size=base), 4),
        "y": gen.random(base),
        "s": words[gen.integers(0, 5000, base)],
        "t": words[gen.integers(0, 50, base)],
    }
    return pa.table({k: pa.array(v[src]) for k, v in cols.items()})


def _run(method: str, rows: int, queue: Any) -> None:
    table = make_table(rows)
    import duckdb
    import polars as pl

    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    base_rss = rss_kb("VmRSS:")
    with Timer() as timer:
        if method == "duckdb":
            con = duckdb.connect()
            con.register("t", table)
            out_rows = con.sql("SELECT DISTINCT * FROM t").to_arrow_table().num_rows
            extra: dict[str, Any] = {}
        elif method == "polars_unique":
            out_rows = df.unique().height
            extra = {}
        elif method == "tamis_lazy":
            from tamis.curate.dedup import exact_dedup

            lazy, report, _ = exact_dedup(df.lazy())
            assert isinstance(lazy, pl.LazyFrame)
            out_rows = lazy.collect(engine="streaming").height
            extra = {"duplicates": report["duplicates"]}
        else:
            from tamis.curate.dedup import exact_dedup

            out, report, clusters = exact_dedup(df)
            assert isinstance(out, pl.DataFrame)
            out_rows = out.height
            extra = {"clusters": report["clusters"], "duplicates": report["duplicates"]}
    peak_mb = peak_mb_above(base_rss)
    queue.put({"seconds": timer.seconds, "rows_out": out_rows, "peak_mb": peak_mb, **extra})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {
        "duckdb": [],
        "polars_unique": [],
        "tamis": [],
        "tamis_lazy": [],
    }
    for _ in range(args.repeat):
        for method in results:
            results[method].append(in_fresh_process(_run, method, args.rows))
    best = {m: min(r, key=lambda x: x["seconds"]) for m, r in results.items()}
    duck, tamis = best["duckdb"], best["tamis"]
    emit(
        {
            "bench": "exact_dedup",
            "rows": args.rows,
            "columns": 10,
            "baseline": "duckdb SELECT DISTINCT",
            **versus("seconds", duck["seconds"], tamis["seconds"]),
            "ratio_tamis_over_baseline": round(tamis["seconds"] / duck["seconds"], 3),
            "polars_unique_seconds": round(best["polars_unique"]["seconds"], 3),
            "tamis_streaming_seconds": round(best["tamis_lazy"]["seconds"], 3),
            "tamis_streaming_peak_mb": round(best["tamis_lazy"]["peak_mb"], 1),
            **versus("peak_mb", duck["peak_mb"], tamis["peak_mb"], 1),
            "polars_unique_peak_mb": round(best["polars_unique"]["peak_mb"], 1),
            "quality_rows_out_equal": duck["rows_out"]
            == tamis["rows_out"]
            == best["tamis_lazy"]["rows_out"],
            "duplicates": tamis["duplicates"],
            "clusters": tamis["clusters"],
            "repeat": args.repeat,
        }
    )


if __name__ == "__main__":
    main()
