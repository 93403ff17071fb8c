"""benchmarks/bench_active_learning.py runs (one short ActiveLab round): the loop the
documented figures come from is exercised on every test run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_active_learning.py"


def test_benchmark_loop_runs_one_round() -> None:
    sys.path.insert(0, str(BENCH.parent))
    try:
        spec = importlib.util.spec_from_file_location("bench_active_learning", BENCH)
        assert spec is not None and spec.loader is not None
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
        curve = bench.run("activelab", 0, rounds=1, batch=50, start=100, dataset="digits")
        assert [c["labels"] for c in curve] == [100, 150]
        assert all(0.3 < c["accuracy"] <= 1.0 for c in curve)
    finally:
        sys.path.remove(str(BENCH.parent))
