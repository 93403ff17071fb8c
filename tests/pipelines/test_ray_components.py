"""Connected components as tasks (large-star / small-star over edge files, `ray_components`)
equal scipy's `connected_components` on random graphs (long paths, stars, many small components,
isolated vertices, self loops, duplicate edges), in this process and on Ray; and a Ray near dedup
forced onto that path (`components_in_driver_max_edges = -1`) writes the local engine's parts
(same parts_hash), report, HTML page and `clusters`/`pairs` tables, handed as scans of the
tasks' Parquet files (the driver never holds them), on a generated corpus with planted chains of
near copies and on SMS Spam; locally and on a three-node loopback cluster (slow: tasks on both
worker nodes).

Ray runs in a subprocess (one Ray instance per process: tests/pipelines/test_ray_engine.py's
module instance would refuse a second `ray.init`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from tamis.pipelines.engines.ray_components import (
    MIN_HEAVY,
    both_ways,
    components,
    local_executor,
    read_labels,
    write_records,
)
from tamis.pipelines.engines.ray_env import loopback_environ, loopback_home

ROOT = Path(__file__).resolve().parents[2]


def _graph(kind: str, seed: int, size: int = 50_000) -> tuple[np.ndarray, np.ndarray]:
    """Edge lists (left, right) of row positions: the shapes that stress a components algorithm."""
    rng = np.random.default_rng(seed)
    if kind == "sorted path":  # diameter n - 1 in vertex order: the worst case of min-labels
        n = 20_000
        return np.arange(n - 1), np.arange(1, n)
    if kind == "random path":
        p = rng.permutation(size) * 3  # gaps: vertices that are not in any edge
        return p[:-1], p[1:]
    if kind == "stars":  # a few big stars, centres anywhere in the order, plus their links
        centres = rng.choice(100_000, 5, replace=False)
        leaves = rng.choice(100_000, 8_000, replace=False)
        left = np.concatenate([np.repeat(centres, 1600), leaves[:4]])
        return left, np.concatenate([leaves, centres[1:]])
    if kind == "many small":  # pairs and triangles: most vertices in small components
        a = rng.choice(10**6, 6000, replace=False)
        return np.concatenate([a[0::2], a[1::6]]), np.concatenate([a[1::2], a[3::6]])
    if kind == "self loops and duplicates":
        left = rng.integers(0, 3000, 4000)
        right = rng.integers(0, 3000, 4000)
        loops = rng.integers(3000, 3100, 50)  # vertices with only a self loop: singletons
        left, right = (
            np.concatenate([left, loops, left[:500]]),
            np.concatenate([right, loops, right[:500]]),
        )
        return left, right
    n, m = 30_000, int(rng.integers(10_000, 40_000))  # random sparse, around the giant component
    return rng.integers(0, n, m), rng.integers(0, n, m)


KINDS = ["sorted path", "random path", "stars", "many small", "self loops and duplicates", "random"]


def _scipy_labels(left: np.ndarray, right: np.ndarray) -> pl.DataFrame:
    """(u, m): every vertex of a component of 2+ vertices and its smallest vertex, by scipy."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nodes = np.unique(np.concatenate([left, right]))
    x, y = np.searchsorted(nodes, left), np.searchsorted(nodes, right)
    graph = coo_matrix((np.ones(x.size), (x, y)), shape=(nodes.size, nodes.size))
    _, comp = connected_components(graph, directed=False)
    frame = pl.DataFrame({"u": nodes, "c": comp}, schema={"u": pl.Int64, "c": pl.Int64})
    frame = frame.with_columns(
        pl.col("u").min().over("c").alias("m"), pl.len().over("c").alias("size")
    )
    return frame.filter(pl.col("size") > 1).select("u", "m").sort("u")


def _edge_file(path: Path, left: np.ndarray, right: np.ndarray, buckets: int) -> str:
    edges = pl.DataFrame({"u": left, "v": right}, schema={"u": pl.Int64, "v": pl.Int64})
    write_records(path, both_ways(edges), buckets)
    return str(path)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("buckets", "min_heavy"), [(1, 0), (3, MIN_HEAVY), (8, 0), (8, 30)])
def test_components_equal_scipy(tmp_path: Path, kind: str, buckets: int, min_heavy: int) -> None:
    """`min_heavy`: 0 never salts; 30 salts the star centres of every kind's last rounds."""
    left, right = _graph(kind, seed=buckets)
    half = left.size // 2  # two edge files, as the verification tasks write them
    files = [
        _edge_file(tmp_path / "e0.arrow", left[:half], right[:half], buckets),
        _edge_file(tmp_path / "e1.arrow", left[half:], right[half:], buckets),
    ]
    found = components(local_executor, files, buckets, tmp_path / "cc", min_heavy)
    if min_heavy == 30 and kind != "many small":
        assert max(found.salted) > 0  # the salted path ran
    got = read_labels(found.label_files, buckets)
    assert got.equals(_scipy_labels(left, right))
    assert found.unstable[-1] == 0
    # O(log n) rounds, not the diameter (min-label propagation needs ~n rounds on a path)
    assert found.rounds <= 2 * np.log2(max(left.size, 2)) + 2
    assert max(found.records) <= 2 * left.size  # the graph never grows
    if kind == "self loops and duplicates":
        assert not set(range(3000, 3100)) & set(got["u"].to_list())  # singletons: no label


def test_salted_star_centres_change_no_round(tmp_path: Path) -> None:
    """Salting the heavy vertices spreads the last rounds' star centres over the buckets (the
    largest bucket shrinks) and leaves the rounds, the unstable counts and the labels as they
    are: the rounds' graphs are the same."""
    left, right = _graph("stars", seed=2)
    found = {}
    for min_heavy in (0, 30):
        d = tmp_path / str(min_heavy)
        files = [_edge_file(d / "e.arrow", left, right, 8)]
        found[min_heavy] = components(local_executor, files, 8, d / "cc", min_heavy)
    plain, salted = found[0], found[30]
    assert max(salted.salted) > 0 and not any(plain.salted)
    assert (salted.rounds, salted.unstable) == (plain.rounds, plain.unstable)
    assert salted.largest_bucket[-1] < plain.largest_bucket[-1] / 2
    assert max(salted.skew[-2:]) < 2 < max(plain.skew[-2:])
    assert read_labels(salted.label_files, 8).equals(read_labels(plain.label_files, 8))


DRIVER = r"""
import json, sys
from pathlib import Path
import numpy as np
import polars as pl
from tamis.pipelines.engines.local import BoundedEngine
from tamis.pipelines.engines.parts import parts_hash
from tamis.pipelines.engines.ray_components import components, ray_executor, read_labels
from tamis.pipelines.engines.ray_engine import ray_engine_session
from tamis.pipelines.registry import get_step_type
from tamis.pipelines.steps.base import StepContext

out, graphs, cases = Path(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
PIPELINE = sys.argv[4]
address = sys.argv[5] if len(sys.argv) > 5 else None  # a cluster's, or a local instance
limit = 64 * 10**6
result = {"graphs": {}, "builds": {}}


def ctx(d):
    (d / "art").mkdir(parents=True, exist_ok=True)
    return StepContext(step="s", pipeline="p", seed=0, artifacts_dir=d / "art")


def frame(t):
    return t.collect() if isinstance(t, pl.LazyFrame) else t


with ray_engine_session(address, limit, out / "spill") as engine:
    import ray
    for name, (files, buckets) in graphs.items():
        found = components(ray_executor(ray), files, buckets, out / "cc" / name)
        read_labels(found.label_files, buckets).write_parquet(out / f"{name}.labels.parquet")
        result["graphs"][name] = found.rounds
    engine.components_in_driver_max_edges = -1  # every near dedup (even without edges): tasks
    for name, (data, raw, rows) in cases.items():
        df = pl.read_parquet(data)
        step = get_step_type("near_dedup")()
        engine.components_min_heavy = raw.pop("min_heavy", 50_000)  # lower: salted centres
        params = step.Params(**raw)
        d = out / name
        local = BoundedEngine(memory_limit=limit, spill_root=d / "ls", batch_rows=rows)
        lp, lo = local.run_step(step, {"input": df.lazy()}, params, ctx(d / "l"), d / "l" / "o")
        engine.local.batch_rows = rows
        rp, ro = engine.run_step(step, {"input": df.lazy()}, params, ctx(d / "r"), d / "r" / "o")
        html = [(d / s / "art" / "near_dedup.html").read_bytes() for s in ("l", "r")]
        result["builds"][name] = {"seconds": engine.near_run.timings,
            "local": parts_hash(lp), "ray": parts_hash(rp),
            "reports_equal": ro.report == lo.report, "report": ro.report,
            "html_equal": html[0] == html[1],
            "tables_equal": {k: frame(ro.tables[k]).equals(frame(t)) for k, t in lo.tables.items()},
            # the task path hands scans of the tasks' Parquet files: never the tables themselves
            "scans": {k: isinstance(t, pl.LazyFrame) and "parquet" in t.explain().lower()
                      for k, t in ro.tables.items()},
            "nodes": sorted(engine.near_run.nodes),
            "components": engine.near_run.components,
            "spill_left": [str(p) for p in (d / "r").glob("**/ray-near-*")],
        }
    if PIPELINE:  # a build through the runner (the store streams the scans into its tables)
        from tamis.pipelines.runner import build
        from tamis.pipelines.store import Store
        pipeline = out / "p.yaml"
        pipeline.write_text(PIPELINE)
        pl.read_parquet(cases["chains_drop"][0]).write_ndjson(out / "corpus.jsonl")
        engine.local.batch_rows = 400
        built = {}
        for side, chosen in [("local", BoundedEngine(memory_limit=limit, spill_root=out / "bs")),
                             ("ray", engine)]:
            store = Store(out / f"store-{side}")
            manifest = build(pipeline, store, engine=chosen).versions["near"]
            built[side] = {"hash": manifest["content_hash"], "report": manifest["report"],
                           "pairs": store.table(manifest["id"], "pairs").to_dicts(),
                           "clusters": store.table(manifest["id"], "clusters").to_dicts()}
        result["build"] = {"same": built["local"] == built["ray"], "hash": built["ray"]["hash"],
                           "components": engine.near_run.components}
print(json.dumps(result, default=str))
"""

PIPELINE = """\
name: near
seed: 7
sources:
  docs: {path: corpus.jsonl}
steps:
  near: {use: near_dedup, input: docs, params: {column: text}}
"""


def _chains(path: Path, seed: int = 0, long: int = 120) -> Path:
    """Random-word documents with planted chains of near copies (each link one word replaced,
    so a chain's ends are far apart: long components), exact copies, and rows in random order."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(3000)])
    texts: list[str | None] = []
    for c in range(60):
        words = list(rng.choice(vocab, 150))
        for _ in range(int(rng.integers(2, 40)) if c % 10 else long):  # every 10th: `long` links
            words[int(rng.integers(len(words)))] = str(rng.choice(vocab))
            texts.append(" ".join(words))
    texts += [" ".join(rng.choice(vocab, int(rng.integers(20, 200)))) for _ in range(2500)]
    texts += [texts[int(i)] for i in rng.integers(0, len(texts), 300)] + [None, ""]
    order = rng.permutation(len(texts))
    df = pl.DataFrame({"id": np.arange(len(texts)), "text": [texts[int(i)] for i in order]})
    df.write_parquet(path)
    return path


def _distinct(path: Path) -> Path:
    """Documents without any near copy (no edge at all: empty clusters and pairs)."""
    rng = np.random.default_rng(5)
    vocab = np.array([f"v{i}" for i in range(5000)])
    texts = [" ".join(rng.choice(vocab, 80)) for _ in range(700)]
    pl.DataFrame({"text": texts}).write_parquet(path)
    return path


def _env(tmp: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return {**clean, **loopback_environ(loopback_home(tmp))}


def _run_driver(
    tmp: Path,
    graphs: dict[str, Any],
    cases: dict[str, Any],
    pipeline: str,
    env: dict[str, str],
    address: str | None = None,
) -> dict[str, Any]:
    """`DRIVER` in a subprocess (on a local instance, or joining the cluster at `address`)."""
    script = tmp / "driver.py"
    script.write_text(DRIVER)
    args = [str(script), str(tmp / "o"), json.dumps(graphs), json.dumps(cases), pipeline]
    run = subprocess.run(
        [sys.executable, *args, *([address] if address else [])],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def _check_builds(result: dict[str, Any]) -> None:
    """Every near dedup on the task path: the local engine's parts, report, tables and HTML,
    the tables handed as scans of Parquet files, no spill dir left."""
    for name, got in result["builds"].items():
        assert got["ray"] == got["local"], name
        assert got["reports_equal"], name
        assert got["tables_equal"] == {"clusters": True, "pairs": True}, name
        assert got["scans"] == {"clusters": True, "pairs": True}, name
        assert got["html_equal"] and not got["spill_left"], name
        assert not got["components"]["in_driver"] and got["components"]["rounds"] >= 1
        if name != "distinct":
            assert got["report"]["duplicates"] > 0 and got["report"]["verified_pairs"] > 0


def test_driver_share_and_buckets() -> None:
    """The driver keeps the union-find while the edges fit a quarter of the limit."""
    from tamis.pipelines.engines.ray_components import (
        DRIVER_BYTES_PER_EDGE,
        component_buckets,
        driver_fits,
    )

    limit = 64 * 10**6
    fit = limit // 4 // DRIVER_BYTES_PER_EDGE
    assert driver_fits(fit, limit) and not driver_fits(fit + 1, limit)
    assert driver_fits(10, limit, max_edges=10) and not driver_fits(11, limit, max_edges=10)
    assert component_buckets(0, limit, 8) == 8
    assert component_buckets(10**8, limit, 8) == 2 * 10**8 * 16 * 8 // (limit // 4)


def test_components_and_near_dedup_as_tasks_on_ray(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    graphs, want = {}, {}
    for kind in ["random path", "stars"]:  # the other shapes: in this process, above
        left, right = _graph(kind, seed=11, size=4000)
        name = kind.replace(" ", "_")
        graphs[name] = ([_edge_file(tmp_path / f"{name}.arrow", left, right, 3)], 3)
        want[name] = _scipy_labels(left, right)
    cases: dict[str, Any] = {
        "chains_drop": [str(_chains(tmp_path / "chains.parquet")), {"column": "text"}, 400],
        "distinct": [str(_distinct(tmp_path / "distinct.parquet")), {"column": "text"}, 300],
        "chains_flag_last": [
            str(tmp_path / "chains.parquet"),
            {"column": "text", "action": "flag", "keep": "last", "threshold": 0.7},
            700,
        ],
        "chains_salted": [  # a chain of 1500 links: its star centre salted over the buckets
            str(_chains(tmp_path / "long.parquet", seed=1, long=1500)),
            {"column": "text", "min_heavy": 5},
            400,
        ],
    }
    shared = Path(os.environ.get("TAMIS_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))
    sms = shared / "sms_spam" / "SMSSpamCollection.tsv"  # skipped when absent
    if sms.exists():
        df = pl.read_csv(sms, separator="\t", quote_char=None)
        df.write_parquet(tmp_path / "sms.parquet")
        cases["sms_none"] = [
            str(tmp_path / "sms.parquet"),
            {"column": "SMS", "threshold": 0.7, "keep": "none"},
            800,
        ]
    env = _env(tmp_path)
    result = _run_driver(tmp_path, graphs, cases, PIPELINE, env)
    for name, labels in want.items():
        assert pl.read_parquet(tmp_path / "o" / f"{name}.labels.parquet").equals(labels), name
    _check_builds(result)
    assert result["builds"]["distinct"]["report"]["clusters"] == 0
    assert max(result["builds"]["chains_salted"]["components"]["salted"]) > 0
    assert not any(result["builds"]["chains_drop"]["components"]["salted"])
    assert result["build"]["same"] and not result["build"]["components"]["in_driver"]
    chains = result["builds"]["chains_drop"]
    assert chains["report"]["largest_cluster"] >= 100  # the long chain is one cluster
    if "sms_none" in result["builds"]:
        assert result["builds"]["sms_none"]["report"]["rows_in"] == 5574


def test_dedup_html_reads_a_scan_of_the_clusters_as_the_table(tmp_path: Path) -> None:
    """The HTML page from a scan of the `clusters` files (the task path) is the page from the
    table; only the count of clusters per size is collected."""
    from tamis.curate.dedup.clusters import edge_clusters
    from tamis.curate.dedup.html import size_counts, write_dedup_html

    left, right = _graph("random", seed=3)
    clusters = edge_clusters(left, right)
    for i, piece in enumerate(clusters.iter_slices(700)):
        piece.write_parquet(tmp_path / f"{i:03d}.parquet")
    scan = pl.scan_parquet(sorted(tmp_path.glob("*.parquet")))
    report = {"rows_in": 30_000, "clusters": clusters.height, "examples": []}
    write_dedup_html(report, clusters, tmp_path / "frame.html")
    write_dedup_html(report, scan, tmp_path / "scan.html")
    assert (tmp_path / "frame.html").read_bytes() == (tmp_path / "scan.html").read_bytes()
    counts = size_counts(scan)
    want = clusters["size"].value_counts().sort("size")
    assert counts["size"].to_list() == want["size"].to_list()
    assert counts["clusters"].to_list() == want["count"].to_list()
    assert "Cluster sizes" in (tmp_path / "scan.html").read_text()


# ---- a three-node loopback cluster -------------------------------------------------------------


@pytest.fixture
def cluster(tmp_path: Path) -> Any:
    """The Ray engine tests' loopback cluster: a head (0 CPUs) and two 1-CPU worker nodes."""
    pytest.importorskip("ray")
    spec = importlib.util.spec_from_file_location(
        "_ray_engine_tests", Path(__file__).parent / "test_ray_engine.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.LoopbackCluster(tmp_path)
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.mark.slow
def test_near_dedup_components_as_tasks_on_a_three_node_loopback_cluster(
    cluster: Any, tmp_path: Path
) -> None:
    """Near dedup forced onto the components' task path on a head and two worker nodes: the
    local engine's parts, report, tables and HTML, also with a salted star centre; tasks
    (rounds included) on both workers."""
    work = tmp_path / "w"
    work.mkdir()
    left, right = _graph("random path", seed=4, size=3000)
    graphs = {"random_path": ([_edge_file(work / "g.arrow", left, right, 4)], 4)}
    chains = str(_chains(work / "chains.parquet", seed=3))
    cases = {
        "chains_drop": [chains, {"column": "text"}, 300],
        "chains_flag_last": [
            chains,
            {"column": "text", "action": "flag", "keep": "last", "threshold": 0.7},
            500,
        ],
        "chains_salted": [
            str(_chains(work / "long.parquet", seed=1, long=1500)),
            {"column": "text", "min_heavy": 5},
            600,
        ],
    }
    result = _run_driver(work, graphs, cases, "", cluster.env, cluster.address)
    labels = pl.read_parquet(work / "o" / "random_path.labels.parquet")
    assert labels.equals(_scipy_labels(left, right))
    _check_builds(result)
    for name, got in result["builds"].items():
        assert len(got["nodes"]) == 2, (name, got["nodes"])  # tasks ran on both workers
        assert got["components"]["buckets"] >= 2, name
    assert max(result["builds"]["chains_salted"]["components"]["salted"]) > 0
