"""Connected components of an edge list too big for the driver: "large-star / small-star" rounds
(Kiveris et al., "Connected Components in MapReduce and Beyond", SoCC 2014) as tasks over files.

    result = components(execute, edge_files, buckets, spill)   # label files: (u, m) per vertex

The graph lives in files only, partitioned by vertex: a stage's task for bucket b reads record
batch b of every file of the previous stage (`ray_files.read_bucket`) and writes ONE file with one
record batch per bucket (`ray_files.write_buckets`); a record (u, v) says "v is a neighbour of u"
and sits in bucket `bucket_of(u)`. No stage gathers edges on the driver: tasks return counts.

- large-star, at every vertex u with neighbourhood N(u): m = min(N(u) + {u}); every neighbour
  v > u is linked to m instead of u (record (v, m), at v's bucket, for the small-star);
- small-star, at every vertex u with its smaller neighbours S(u) (all < u): m = min S(u); every
  v in S(u) - {m} and u itself are linked to m (records both ways, for the next large-star).

Each round keeps the components and never adds edges (a vertex keeps at least one edge), and
the rounds end in one star per component centred on its smallest vertex, in O(log n) rounds in
practice (O(log^2 n) proven): unlike min-label propagation, the rounds do not grow with the
components' diameter (measured: a path of 20,000 rows in row order 16 rounds, a random path of
50,000 rows 14, 3M random edges with a 100k chain 7). The large-star task checks its input: the
graph is a star forest when no vertex has two smaller neighbours or both a smaller and a larger
one; then a vertex's label min(N(u) + {u}) is its component's smallest vertex, and the tasks,
all stable, wrote their vertices' labels (u, m) into files with one batch per bucket of m (the
clusters' reducers read them).

Skew: in the last rounds a component is a star whose records (m, v) all sit in the bucket of its
centre m, so the largest component, not the edge count, would set a task's memory (a 2.37M-row
component: 2.70M records in one task, 4.3x the mean bucket). A small-star task that writes more
than `min_heavy` records of one vertex, and more than half a bucket's share of its output (its
home bucket would get half a mean bucket more from every task), salts them:
they go to the bucket of v instead of u. The next large-star treats those heavy vertices apart:
each bucket computes its part of their neighbourhood (smallest neighbour, counts of smaller and
larger ones: `partial_star`) and holds their records (u, v > u) by the bucket of v; the driver
combines the parts (one row per vertex and bucket: the minimum is the minimum of the parts, the
counts their sums, so the vertex's m and the stability test are `large_star`'s), and the next
small-star links the held records to m. Same edges, same rounds, same labels (measured on 3M
edges, 8 buckets: the largest bucket 2.70M -> 0.63M records, worker peak 992 -> 652 MB and
903 -> 626 MB in two runs, time -28% and +4%: within the machine's noise).

Vertices with only self loops (or no edge) have no label: they are singletons. Labels are the
smallest vertex of each component, so they do not depend on buckets, files or rounds.

`execute(fn, calls, stage)` runs `fn(*args)` for each args tuple and returns the decoded results:
`ray_executor(ray)` as Ray tasks, `local_executor` in this process (tests, a single machine).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tamis.curate.dedup.near_stages import bucket_of
from tamis.pipelines.engines.ray_files import read_bucket, write_buckets

#: the driver's share of the memory limit for the union-find path (edges, labels, marks)
DRIVER_SHARE = 4
#: driver memory of the union-find path per edge: `OutputPlan.of` (edge arrays, `np.unique` of
#: the endpoints, scipy's graph, labels, cluster table, marks) peaked at 92-184 B per edge on 2M
#: random edges (few large clusters to 0.5M small ones)
DRIVER_BYTES_PER_EDGE = 160
#: bytes of one (u, v) record, and a stage task's working copies of its records (unique, group
#: by, join): one bucket of records must fit a quarter of the limit
RECORD_BYTES = 16
RECORD_WORKING_FACTOR = 8
#: a safety stop: the rounds are O(log^2 n), 100 is never reached by a real graph
MAX_ROUNDS = 100

#: a vertex is heavy (salted over the buckets) past this many records in one small-star task
#: and half a bucket's share of them: a star centre of the last rounds, whose records would all sit in
#: its bucket (a 2.37M-row component: 2.7M records in one task, 4.3x the mean bucket)
MIN_HEAVY = 50_000

EDGE_SCHEMA = {"u": pl.Int64, "v": pl.Int64}
LABEL_SCHEMA = {"u": pl.Int64, "m": pl.Int64}

Execute = Callable[[Callable[..., bytes], list[tuple[Any, ...]], str], list[dict[str, Any]]]


# ---- per bucket: the two operations, on one bucket's records ----------------------------------
def large_star(records: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """One bucket's large-star: (records (v, m) for the small-star, labels (u, m), unstable).

    `unstable` counts the vertices that break the star-forest shape (two smaller neighbours, or
    a smaller and a larger one); 0 in every bucket means the labels are the components'."""
    f = records.select("u", "v").filter(pl.col("u") != pl.col("v")).unique()
    g = f.group_by("u").agg(
        pl.col("v").min().alias("mv"),
        (pl.col("v") < pl.col("u")).sum().alias("s"),
        (pl.col("v") > pl.col("u")).sum().alias("l"),
    )
    g = g.with_columns(pl.min_horizontal("mv", "u").alias("m"))
    unstable = g.filter((pl.col("s") >= 2) | ((pl.col("s") >= 1) & (pl.col("l") >= 1))).height
    out = (
        f.filter(pl.col("v") > pl.col("u"))
        .join(g.select("u", "m"), on="u")
        .select(pl.col("v").alias("u"), pl.col("m").alias("v"))
    )
    return out, g.select("u", "m"), unstable


def small_star(records: pl.DataFrame) -> pl.DataFrame:
    """One bucket's small-star on records (u, v) with v < u: the records of the new edges, both
    ways (for the large-star)."""
    f = records.unique()
    g = f.group_by("u").agg(pl.col("v").min().alias("m"))
    linked = f.join(g, on="u").filter(pl.col("v") != pl.col("m")).select(a="v", b="m")
    edges = pl.concat([linked, g.select(a="u", b="m")])
    return both_ways(edges.rename({"a": "u", "b": "v"}))


def both_ways(edges: pl.DataFrame) -> pl.DataFrame:
    """Records (u, v) and (v, u) of edges (u, v) (other columns kept)."""
    swapped = edges.with_columns(pl.col("v").alias("u"), pl.col("u").alias("v"))
    return pl.concat([edges, swapped])


def vertex_buckets(values: pl.Series | np.ndarray, n: int) -> np.ndarray:
    """The bucket of vertices (a hash of the row position: spreads runs of neighbouring rows)."""
    array = values.to_numpy() if isinstance(values, pl.Series) else values
    return bucket_of(array.astype(np.int64, copy=False), n=n)


def write_records(
    path: Path, records: pl.DataFrame, n: int, heavy: np.ndarray | None = None
) -> int:
    """Records routed by the bucket of `u` (one record batch per bucket), those of a `heavy`
    vertex by the bucket of `v` (spread over the buckets); the file's size."""
    bucket = vertex_buckets(records["u"], n)
    if heavy is not None and heavy.size:
        salted = np.isin(records["u"].to_numpy(), heavy)
        bucket[salted] = vertex_buckets(records["v"].to_numpy()[salted], n)
    return write_buckets(path, records, bucket, n)


def partial_star(records: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The large-star of heavy vertices on one bucket's share of their records: (each vertex's
    smallest neighbour and counts of smaller / larger ones here, to be combined over the buckets;
    the records (u, v) with v > u, linked to u's combined minimum by the next small-star)."""
    f = records.select("u", "v").filter(pl.col("u") != pl.col("v")).unique()
    agg = f.group_by("u").agg(
        pl.col("v").min().alias("mv"),
        (pl.col("v") < pl.col("u")).sum().cast(pl.Int64).alias("s"),
        (pl.col("v") > pl.col("u")).sum().cast(pl.Int64).alias("l"),
    )
    return agg, f.filter(pl.col("v") > pl.col("u"))


def combine_partials(rows: list[list[int]]) -> tuple[pl.DataFrame, int]:
    """The heavy vertices' partial large-stars (u, mv, s, l) of every bucket -> (u, m) with m
    the smallest of u's neighbourhood and u, and how many are unstable (as `large_star`).

    NumPy on a handful of rows (a Polars group-by in the driver grew it by 65 MB)."""
    arr = np.array(rows, np.int64).reshape(-1, 4)
    arr = arr[np.argsort(arr[:, 0], kind="stable")]
    u, start = np.unique(arr[:, 0], return_index=True)
    if not u.size:
        return pl.DataFrame(schema=LABEL_SCHEMA), 0
    mv = np.minimum.reduceat(arr[:, 1], start)
    s, larger = np.add.reduceat(arr[:, 2], start), np.add.reduceat(arr[:, 3], start)
    unstable = int(((s >= 2) | ((s >= 1) & (larger >= 1))).sum())
    return pl.DataFrame({"u": u, "m": np.minimum(mv, u)}, schema=LABEL_SCHEMA), unstable


# ---- tasks -----------------------------------------------------------------------------------
def done(meta: dict[str, Any]) -> bytes:
    """A task's result: JSON counts with the node id and peak memory (`ray_files.pack`'s meta)."""
    from tamis.pipelines.engines.ray_files import peak_rss

    node = "driver"
    try:
        import ray

        if ray.is_initialized():
            node = str(ray.get_runtime_context().get_node_id())
    except ImportError:  # the local executor without ray installed
        pass
    return json.dumps({**meta, "node": node, "peak_rss": peak_rss()}).encode()


def large_star_task(
    files: list[str],
    bucket: int,
    n: int,
    paths: tuple[str, str, str],
    heavy: np.ndarray | None = None,
) -> bytes:
    """Large-star of one bucket -> the small-star's records; its labels when it is stable.

    `paths`: its records, labels and held records; the `heavy` vertices' records (salted over
    the buckets) get a partial large-star (`partial_star`): their counts go back to the driver,
    their records (u, v > u) are held for the small-star, by the bucket of v."""
    out, labels, hold = paths
    records = read_bucket([Path(f) for f in files], bucket)
    if not records.width:
        records = pl.DataFrame(schema=EDGE_SCHEMA)
    meta: dict[str, Any] = {"input": records.height, "partial": [], "bytes": 0, "records": 0}
    if heavy is not None and heavy.size:
        salted = pl.Series(np.isin(records["u"].to_numpy(), heavy))
        agg, held = partial_star(records.filter(salted))
        records = records.filter(~salted)
        meta["partial"], meta["records"] = agg.rows(), held.height
        meta["bytes"] += write_buckets(Path(hold), held, vertex_buckets(held["v"], n), n)
    nxt, label, unstable = large_star(records)
    meta["bytes"] += write_records(Path(out), nxt, n)
    if not unstable:  # used only if every bucket is stable (then no other round runs)
        meta["bytes"] += write_buckets(Path(labels), label, vertex_buckets(label["m"], n), n)
    return done({**meta, "unstable": unstable, "records": meta["records"] + nxt.height})


def small_star_task(
    files: list[str],
    bucket: int,
    n: int,
    out: str,
    held: tuple[list[str], np.ndarray, np.ndarray] | None = None,
    min_heavy: int = 0,
) -> bytes:
    """Small-star of one bucket -> the next large-star's records.

    `held`: the large-star's held records of heavy vertices and those vertices' (u, m): their
    records (v, m) join this bucket's. A vertex with more than `min_heavy` of this task's output
    records and more than half a bucket's share of them is heavy: its records are salted (returned)."""
    records = read_bucket([Path(f) for f in files], bucket)
    if not records.width:
        records = pl.DataFrame(schema=EDGE_SCHEMA)
    if held is not None:
        hold_files, hu, hm = held
        kept = [Path(f) for f in hold_files if Path(f).exists()]
        share = read_bucket(kept, bucket) if kept else pl.DataFrame()
        if share.width and share.height:
            m = pl.DataFrame({"u": hu, "m": hm}, schema=LABEL_SCHEMA)
            linked = share.join(m, on="u").select(pl.col("v").alias("u"), pl.col("m").alias("v"))
            records = pl.concat([records, linked])
    inputs = records.height
    nxt = small_star(records)
    heavy = np.zeros(0, np.int64)
    if min_heavy > 0 and n > 1:
        counts = nxt.group_by("u").len()
        bound = max(min_heavy, nxt.height // (2 * n))  # at most 2n heavy vertices a task
        heavy = np.sort(counts.filter(pl.col("len") > bound)["u"].to_numpy())
    written = write_records(Path(out), nxt, n, heavy)
    meta = {"records": nxt.height, "bytes": written, "input": inputs}
    return done({**meta, "heavy": heavy.tolist()})


# ---- the driver ------------------------------------------------------------------------------
@dataclass
class Components:
    """Where the labels are and how they were found."""

    #: files of labels (u, m: the component's smallest vertex), one record batch per bucket of m
    label_files: list[str]
    buckets: int
    rounds: int = 0
    #: unstable vertices found by each round's large-star (the last one is 0)
    unstable: list[int] = field(default_factory=list)
    #: the records each stage wrote (the graph's size in records, round by round)
    records: list[int] = field(default_factory=list)
    #: each stage's largest bucket (the records one task read), and its skew: the largest
    #: bucket over the mean one (1.0: even; `buckets`: every record in one task)
    largest_bucket: list[int] = field(default_factory=list)
    skew: list[float] = field(default_factory=list)
    #: the heavy vertices each large-star salted over the buckets
    salted: list[int] = field(default_factory=list)

    def saw_inputs(self, metas: list[dict[str, Any]]) -> None:
        largest, total = max(m["input"] for m in metas), sum(m["input"] for m in metas)
        self.largest_bucket.append(largest)
        self.skew.append(round(largest * len(metas) / total, 2) if total else 1.0)

    shuffle_bytes: int = 0
    metas: list[dict[str, Any]] = field(default_factory=list)


def components(
    execute: Execute,
    edge_files: list[str],
    buckets: int,
    spill: Path,
    min_heavy: int = MIN_HEAVY,
) -> Components:
    """Connected components of the records (u, v) in `edge_files` (both ways, routed by u into
    `buckets` batches: `write_records(path, both_ways(edges), buckets)`), in rounds of tasks.

    A vertex with more records than `min_heavy` and half a bucket's share in a small-star task's
    output is salted (0: never): its records spread over the buckets, its large-star combined on
    the driver from each bucket's partial one (one row per vertex and bucket). Files go under
    `spill` (the caller deletes it)."""
    from tamis.errors import EngineError

    result = Components([], buckets)
    files = list(edge_files)
    heavy = np.zeros(0, np.int64)
    for k in range(MAX_ROUNDS):
        large = [str(spill / f"ls{k:03d}" / f"{b:06d}.arrow") for b in range(buckets)]
        labels = [str(spill / f"labels{k:03d}" / f"{b:06d}.arrow") for b in range(buckets)]
        hold = [str(spill / f"hold{k:03d}" / f"{b:06d}.arrow") for b in range(buckets)]
        metas = execute(
            large_star_task,
            [(files, b, buckets, (large[b], labels[b], hold[b]), heavy) for b in range(buckets)],
            f"components' round {k + 1} (large-star)",
        )
        result.rounds = k + 1
        result.metas += metas
        partial, unstable = combine_partials([r for m in metas for r in m["partial"]])
        result.salted.append(int(partial.height))
        result.unstable.append(sum(m["unstable"] for m in metas) + unstable)
        result.records.append(sum(m["records"] for m in metas))
        result.saw_inputs(metas)
        result.shuffle_bytes += sum(m["bytes"] for m in metas)
        if result.unstable[-1] == 0:
            if partial.height:  # the heavy vertices' labels, by the bucket of m
                path = spill / f"labels{k:03d}" / "heavy.arrow"
                write_buckets(path, partial, vertex_buckets(partial["m"], buckets), buckets)
                labels.append(str(path))
            result.label_files = labels
            return result
        small = [str(spill / f"ss{k:03d}" / f"{b:06d}.arrow") for b in range(buckets)]
        held = (hold, partial["u"].to_numpy(), partial["m"].to_numpy()) if partial.height else None
        metas = execute(
            small_star_task,
            [(large, b, buckets, small[b], held, min_heavy) for b in range(buckets)],
            f"components' round {k + 1} (small-star)",
        )
        result.metas += metas
        result.records.append(sum(m["records"] for m in metas))
        result.saw_inputs(metas)
        result.shuffle_bytes += sum(m["bytes"] for m in metas)
        heavy = np.unique(np.array([u for m in metas for u in m["heavy"]], np.int64))
        # consumed: this round's large-star records, labels and held records, the previous
        # round's records
        _remove(large, labels, hold, files if k else [])
        files = small
    raise EngineError(
        f"connected components did not converge in {MAX_ROUNDS} rounds",
        fix="report this graph (the rounds are O(log^2 n)); meanwhile raise --memory-limit so "
        "the driver's union-find runs",
    )


def _remove(*groups: list[str]) -> None:
    for group in groups:
        for f in group:
            Path(f).unlink(missing_ok=True)


def ray_executor(ray: Any, saw: Callable[[list[dict[str, Any]]], None] | None = None) -> Execute:
    """Stages as Ray tasks (one CPU each, retried on a lost node: files are rewritten whole)."""
    from tamis.pipelines.engines.ray_files import get_all, remote

    def execute(fn: Callable[..., bytes], calls: list[tuple[Any, ...]], stage: str) -> list[Any]:
        jobs = [remote(fn).remote(*args) for args in calls]
        metas = [json.loads(blob) for blob in get_all(ray, jobs, stage)]
        if saw is not None:
            saw(metas)
        return metas

    return execute


def local_executor(fn: Callable[..., bytes], calls: list[tuple[Any, ...]], stage: str) -> list[Any]:
    """Stages in this process, one after the other (the same files and functions)."""
    return [json.loads(fn(*args)) for args in calls]


def read_labels(files: list[str], buckets: int) -> pl.DataFrame:
    """Every label (u, m) of `files`, sorted by u (tests, small graphs)."""
    paths = [Path(f) for f in files if Path(f).exists()]
    frames = [read_bucket(paths, b) for b in range(buckets)] if paths else []
    frames = [f for f in frames if f.width]
    if not frames:
        return pl.DataFrame(schema=LABEL_SCHEMA)
    return pl.concat(frames).sort("u")


def component_buckets(edges: int, memory_limit: int, at_least: int) -> int:
    """Vertex buckets of the rounds: one bucket's records (each edge twice) with the working
    copies fit a quarter of the limit, and at least `at_least` (the stages' parallelism)."""
    need = 2 * edges * RECORD_BYTES * RECORD_WORKING_FACTOR
    return max(1, at_least, math.ceil(need / (memory_limit / 4)))


def driver_fits(edges: int, memory_limit: int, max_edges: int | None = None) -> bool:
    """Whether union-find over `edges` edges fits the driver's share of the limit (a quarter),
    or `max_edges` (a test's or a user's bound) when given."""
    if max_edges is not None:
        return edges <= max_edges
    return edges * DRIVER_BYTES_PER_EDGE <= memory_limit / DRIVER_SHARE


__all__ = [
    "DRIVER_BYTES_PER_EDGE",
    "DRIVER_SHARE",
    "Components",
    "both_ways",
    "component_buckets",
    "components",
    "driver_fits",
    "large_star",
    "local_executor",
    "ray_executor",
    "read_labels",
    "small_star",
    "vertex_buckets",
    "write_records",
]
