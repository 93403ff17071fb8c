"""Version-store overhead: writing a version vs a bare `polars.DataFrame.write_parquet`.

Also times a no-op rebuild of a 5-step pipeline (the CLI, in a fresh process) against bare
interpreter start. Prints one JSON line. Usage: python benchmarks/bench_store.py [--rows N]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from tamis.pipelines.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit  # noqa: E402


def make_frame(rows: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    cats = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"])
    return pl.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64),
            "a": rng.integers(0, 1000, rows),
            "b": rng.integers(0, 10, rows),
            "c": rng.random(rows),
            "d": rng.normal(size=rows),
            "e": rng.random(rows).astype(np.float32),
            "f": cats[rng.integers(0, len(cats), rows)],
            "g": rng.integers(0, 2, rows).astype(bool),
            "h": rng.integers(-(2**40), 2**40, rows),
            "i": cats[rng.integers(0, 3, rows)],
        }
    )


def best_of(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def noop_rebuild(tmp: Path) -> dict[str, float]:
    make_frame(200_000).write_csv(tmp / "src.csv")
    spec = {
        "name": "bench",
        "sources": {"src": {"path": "src.csv"}},
        "steps": {
            "s1": {"use": "normalize", "input": "src"},
            "s2": {"use": "filter", "input": "s1", "params": {"where": "a < 900"}},
            "s3": {"use": "sample", "input": "s2", "params": {"fraction": 0.5}},
            "s4": {"use": "split", "input": "s3"},
            "s5": {"use": "sample", "input": "s4.train", "params": {"n": 1000}},
        },
    }
    (tmp / "p.yaml").write_text(yaml.safe_dump(spec))
    tamis = [sys.executable, "-m", "tamis.cli"]
    cmd = [
        sys.executable,
        "-c",
        "from tamis.cli import app; app()",
        "build",
        str(tmp / "p.yaml"),
        "--store",
        str(tmp / "st"),
        "--json",
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    del tamis
    rebuild = best_of(lambda: subprocess.run(cmd, check=True, capture_output=True), 3)
    bare = best_of(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), 3)
    imports = best_of(
        lambda: subprocess.run([sys.executable, "-c", "import tamis.cli"], check=True), 3
    )
    return {
        "noop_rebuild_s": rebuild,
        "interpreter_start_s": bare,
        "import_tamis_cli_s": imports,
        "noop_beyond_interpreter_s": rebuild - bare,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_store_"))
    try:
        df = make_frame(args.rows)
        n = [0]

        def bare() -> None:
            df.write_parquet(tmp / f"bare{n[0]}.parquet")
            n[0] += 1

        store = Store(tmp / "store")

        def versioned() -> None:
            store.write_version(
                version_id=f"{n[0]:064x}",
                name="bench/v",
                frame=df,
                parents=[],
                step={"name": "v", "type": "bench", "params": {}},
                seed=0,
            )
            n[0] += 1

        versioned()  # create the catalog outside the timing, as any existing store has one
        bare()
        # alternate the two so that both see the same page-cache and machine state
        t_bare, t_store = float("inf"), float("inf")
        for _ in range(args.repeat):
            t_bare = min(t_bare, best_of(bare, 1))
            t_store = min(t_store, best_of(versioned, 1))
        noop = noop_rebuild(tmp)
        result = {
            "bench": "store_write",
            "rows": args.rows,
            "columns": df.width,
            "baseline": "polars.DataFrame.write_parquet",
            "baseline_s": round(t_bare, 3),
            "tamis_s": round(t_store, 3),
            "ratio": round(t_store / t_bare, 3),
            "target_ratio": 1.3,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            **{k: round(v, 3) for k, v in noop.items()},
            "target_noop_beyond_interpreter_s": 1.0,
        }
        emit(result)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
