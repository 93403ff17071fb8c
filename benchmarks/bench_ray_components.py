"""Near dedup's connected components: the driver's union-find vs tasks (large-star / small-star).

A random edge list stands for the verified edges (`--edges`, default 3M, over as many vertices:
mean degree 2, one giant component and many small ones) plus one long chain of near copies
(`--chain` vertices: the diameter min-label propagation would need as many rounds for). It is
written as `--files` IPC files of (l, r, j), as the verification tasks write them. Each side runs
in a fresh process (its own peak memory, RssAnon sampled above the process's baseline):

- `driver`: the union-find path of `ray_near`: the files read back (`read_verified`), then
  `OutputPlan.of` (components by scipy, keep rule marks, best Jaccard, the `clusters` table);
  `components_only` is `edge_clusters` alone on the same arrays;
- `tasks`: the distributed path of `ray_near_components` on a local loopback Ray instance
  (2 CPUs): routing the files by vertex, the side task (best Jaccard, pairs by range), the
  rounds (`ray_components.components`) and the cluster tasks (the `clusters` table and the
  marks into files, counts and the largest cluster back to the driver); the rounds, unstable vertices per round, and the peak memory of the
  driver and of the workers. Ray's start-up is not counted.

Both give the same clusters (checked: count, rows, largest). Ratios are tasks / driver, measured
in one run; the load average is recorded before and after.

    nice -n 10 .venv/bin/python benchmarks/bench_ray_components.py --edges 3000000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import AnonPeak, Timer, emit, in_fresh_process, rss_kb  # noqa: E402


def write_edges(work: Path, edges: int, chain: int, files: int, seed: int) -> list[str]:
    """The random graph plus a chain through random vertices, as verification's edge files."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    n = edges
    left, right = rng.integers(0, n, edges - chain), rng.integers(0, n, edges - chain)
    path = rng.choice(n, chain + 1, replace=False)
    left, right = np.concatenate([left, path[:-1]]), np.concatenate([right, path[1:]])
    keep = left != right
    lo, hi = np.minimum(left, right)[keep], np.maximum(left, right)[keep]
    jac = rng.uniform(0.8, 1.0, lo.size)
    out = []
    for i, idx in enumerate(np.array_split(np.arange(lo.size), files)):
        name = work / f"verified-{i:04d}.arrow"
        pl.DataFrame({"l": lo[idx], "r": hi[idx], "j": jac[idx]}).write_ipc(name)
        out.append(str(name))
    return out


def _summary(clusters: Any) -> dict[str, int]:
    return {
        "clusters": int(clusters.height),
        "rows_in_clusters": int(clusters["size"].sum()),
        "largest": int(clusters["size"].max() or 0),
    }


def driver_side(files: list[str], queue: Any) -> None:
    """The union-find path: read the edges back, `OutputPlan.of` (and `edge_clusters` alone)."""
    import numpy as np

    from tamis.curate.dedup.clusters import edge_clusters
    from tamis.curate.dedup.near import NearDedupConfig
    from tamis.curate.dedup.near_stages import OutputPlan, all_edges
    from tamis.pipelines.engines.ray_near_components import read_verified

    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    base = rss_kb("RssAnon")
    with AnonPeak() as peak, Timer() as timer:
        edges = all_edges(empty, read_verified(files))
        plan = OutputPlan.of(edges, NearDedupConfig(column="text"), "near_duplicate")
    summary = _summary(plan.clusters)
    left, right = edges[0], edges[1]
    del plan
    with Timer() as only:
        edge_clusters(left, right)
    queue.put(
        {
            "seconds": timer.seconds,
            "components_only_seconds": only.seconds,
            "peak_mb": peak.mb - base / 1024,
            "edges": int(left.size),
            **summary,
        }
    )


def tasks_side(files: list[str], spill: str, buckets: int, min_heavy: int, queue: Any) -> None:
    """The distributed path: route, side task, rounds, cluster tasks on a local Ray instance."""
    import polars as pl

    from tamis.pipelines.engines.ray_components import components, ray_executor
    from tamis.pipelines.engines.ray_env import ray_session
    from tamis.pipelines.engines.ray_files import get_all, remote, unpack
    from tamis.pipelines.engines.ray_near_components import cluster_task, route_task, side_task

    root = Path(spill)
    worker_peak = 0

    def saw(metas: list[dict[str, Any]]) -> None:
        nonlocal worker_peak
        worker_peak = max([worker_peak, *(int(m["peak_rss"]) for m in metas)])

    def run(jobs: list[Any], stage: str) -> list[Any]:
        out = [unpack(b) for b in get_all(ray, jobs, stage)]
        saw([m for m, _ in out])
        return out

    with ray_session(None, num_cpus=2) as ray:
        run([remote(route_task).remote(files[0], str(root / "warm.arrow"), 1)], "warm-up")
        base = rss_kb("RssAnon")
        with AnonPeak() as peak, Timer() as timer:
            edges = [str(root / "edges" / f"{i:06d}.arrow") for i in range(len(files))]
            run(
                [remote(route_task).remote(f, edges[i], buckets) for i, f in enumerate(files)],
                "route",
            )
            ranges, range_rows = 64, 1 + max(pl.scan_ipc(f).select(pl.max("r")).collect().item()
                                             for f in files) // 64  # fmt: skip
            side = [
                remote(side_task).remote(
                    edges, b, range_rows, ranges, str(root / "best" / f"{b}.arrow"),
                    str(root / "pairs" / f"{b}.arrow"),
                )
                for b in range(buckets)
            ]  # fmt: skip
            run(side, "side")
            t_rounds = time.perf_counter()
            found = components(ray_executor(ray, saw), edges, buckets, root / "cc", min_heavy)
            rounds_seconds = time.perf_counter() - t_rounds
            jobs = [
                remote(cluster_task).remote(
                    found.label_files, b, "first", (range_rows, ranges),
                    (str(root / f"n{b}.arrow"), str(root / f"c{b}.arrow")), 1,
                )
                for b in range(buckets)
            ]  # fmt: skip
            done = run(jobs, "clusters")  # the table stays in files: counts and the largest
            summary = {
                "clusters": sum(m["clusters"] for m, _ in done),
                "rows_in_clusters": sum(m["rows_in_clusters"] for m, _ in done),
                "largest": max([0, *(int(f["top"]["size"].max() or 0) for _, f in done)]),
            }
    queue.put(
        {
            "seconds": timer.seconds,
            "rounds_seconds": rounds_seconds,
            "rounds": found.rounds,
            "unstable": found.unstable,
            "records": found.records,
            "largest_bucket": found.largest_bucket,
            # the largest bucket's records / the mean bucket's, stage by stage (1 = no skew)
            "skew": found.skew,
            "min_heavy": min_heavy,
            "salted": found.salted,
            "shuffle_mb": found.shuffle_bytes / 1e6,
            "driver_peak_mb": peak.mb - base / 1024,
            "worker_peak_mb": worker_peak / 2**20,
            "buckets": buckets,
            **summary,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=int, default=3_000_000)
    parser.add_argument("--chain", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=16, help="verification tasks' edge files")
    parser.add_argument("--buckets", type=int, default=8, help="vertex buckets of the rounds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--min-heavy",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[0, 50_000],
        help="comma-separated: one task run per value (0: no salting; 50000: the default)",
    )
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = Path(tmp)
        files = write_edges(work, args.edges, args.chain, args.files, args.seed)
        load = [os.getloadavg()[0]]
        driver = in_fresh_process(driver_side, files)
        runs = {}
        for min_heavy in args.min_heavy:
            spill = str(work / f"spill{min_heavy}")
            runs[min_heavy] = in_fresh_process(tasks_side, files, spill, args.buckets, min_heavy)
        load.append(os.getloadavg()[0])
    keys = ("clusters", "rows_in_clusters", "largest")
    tasks = runs[args.min_heavy[0]]
    emit(
        {
            "benchmark": "ray_components",
            "edges": driver["edges"],
            "chain": args.chain,
            "driver": driver,
            "tasks": runs,
            "same_clusters": all(driver[k] == t[k] for t in runs.values() for k in keys),
            "time_ratio_tasks_over_driver": {
                h: round(t["seconds"] / driver["seconds"], 2) for h, t in runs.items()
            },
            "driver_memory_ratio_tasks_over_driver": round(
                tasks["driver_peak_mb"] / max(driver["peak_mb"], 1e-9), 3
            ),
            "worker_peak_mb": {h: round(t["worker_peak_mb"], 1) for h, t in runs.items()},
            "largest_bucket_skew": {h: max(t["skew"]) for h, t in runs.items()},
            "load_average_1min_before_after": load,
        }
    )


if __name__ == "__main__":
    main()
