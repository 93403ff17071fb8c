"""leakage under the Ray engine: the eval sets' index broadcast to one scan task per range of rows,
the tasks' states merged on the driver. Same parts (`parts_hash`), report and tables as the local
engine and the in-memory `find_leakage`, whatever the ranges; figures checked against plain
Python sets on SMS Spam, UCI Adult and planted overlaps; a `tamis build --engine ray` of a
pipeline with a leakage step gives the local build's content hash.

Ray runs in subprocesses (one Ray instance per process): a driver script runs every scenario on
one local loopback instance and writes its results (parts hash, report, tables as Arrow IPC);
the tests compute the local engine's and the in-memory results here and compare.
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
import yaml

from tamis.curate.leakage import LeakageConfig, find_leakage
from tamis.curate.leakage_scan import LeakageScan, target_columns
from tamis.pipelines.engines.local import BoundedEngine
from tamis.pipelines.engines.memory import parse_size
from tamis.pipelines.engines.parts import parts_hash, write_frame_parts
from tamis.pipelines.engines.ray_env import loopback_environ, loopback_home
from tamis.pipelines.steps.base import StepContext
from tamis.pipelines.steps.leakage import Leakage

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PYTHON = sys.executable
SHARED = Path(os.environ.get("TAMIS_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))
SMS_FILE = SHARED / "sms_spam" / "SMSSpamCollection.tsv"
ADULT = SHARED / "adult"
SEED = 5
LIMIT = "32MB"


def _bounded_tests() -> Any:
    """The bounded leakage tests' planted overlaps (`_planted`, `PLANTED`)."""
    spec = importlib.util.spec_from_file_location(
        "_leakage_bounded", HERE / "test_leakage_bounded.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ctx(tmp: Path) -> StepContext:
    (tmp / "art").mkdir(parents=True, exist_ok=True)
    return StepContext(step="lk", pipeline="p", seed=SEED, artifacts_dir=tmp / "art")


def _sms() -> tuple[pl.DataFrame, pl.DataFrame]:
    sms = pl.read_csv(
        SMS_FILE, separator="\t", has_header=False, new_columns=["Label", "SMS"], quote_char=None
    ).with_row_index("id")
    train = sms.filter(pl.col("id") % 4 != 0).drop("id")
    return train, sms.filter(pl.col("id") % 4 == 0).drop("id")


def _adult() -> tuple[pl.DataFrame, pl.DataFrame]:
    """adult.data and adult.test as the shared fixtures read and clean them."""
    spec = importlib.util.spec_from_file_location("_tests_conftest", ROOT / "tests" / "conftest.py")
    assert spec is not None and spec.loader is not None
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    train, test = (
        conftest.clean_adult(conftest._read_adult(ADULT / f"adult.{part}"))
        for part in ("data", "test")
    )
    return train, test


# ---- the scenarios: input, eval sets, params, rows per task, rows per part ------------------

PLANTED_RAW: dict[str, Any] = dict(
    text="text", ngram=13, near_ngram=5, near_threshold=0.8, group="user", time="t"
)
ADULT_RAW: dict[str, Any] = dict(
    label="income", group="fnlwgt", time="age", drop_on=["exact", "group"], max_table_rows=400
)
SCENARIOS: dict[str, dict[str, Any]] = {
    "planted_drop": dict(
        data="planted",
        params={**PLANTED_RAW, "columns": ["text"], "label": "label", "action": "drop"},
        batch_rows=37,
        part_rows=100,
    ),
    "planted_flag": dict(
        data="planted",
        params={
            **PLANTED_RAW,
            "columns": ["text"],
            "label": "label",
            "action": "flag",
            "max_table_rows": 50,
        },
        batch_rows=250,
        part_rows=None,
    ),
    "sms_flag": dict(
        data="sms",
        params=dict(text="SMS", label="Label", ngram=8, action="flag"),
        batch_rows=600,
        part_rows=1500,
    ),
    "sms_drop": dict(
        data="sms",
        params=dict(text="SMS", label="Label", ngram=8, near_threshold=0.7, action="drop"),
        batch_rows=1700,
        part_rows=None,
    ),
    "adult_drop": dict(
        data="adult", params={**ADULT_RAW, "action": "drop"}, batch_rows=3000, part_rows=7000
    ),
    "adult_flag": dict(
        data="adult", params={**ADULT_RAW, "action": "flag"}, batch_rows=9000, part_rows=None
    ),
}


def _data(kind: str) -> tuple[pl.DataFrame, list[pl.DataFrame]] | None:
    if kind == "planted":
        df, ev = _bounded_tests()._planted(900, 120)
        return df, [ev, ev.head(40)]
    if kind == "sms":
        if not SMS_FILE.exists():
            return None
        train, test = _sms()
        return train, [test]
    if not (ADULT / "adult.data").exists():
        return None
    train, test = _adult()
    return train, [test]


DRIVER = r"""
import json, sys
from pathlib import Path
import polars as pl
from tamis.curate.leakage import LeakageConfig
from tamis.pipelines.engines.parts import parts_hash
from tamis.pipelines.engines.ray_engine import ray_engine_session
from tamis.pipelines.steps.base import StepContext
from tamis.pipelines.steps.leakage import Leakage
from tamis.pipelines.engines import ray_leakage

ranges = []
real_ranges = ray_leakage.task_ranges
def task_ranges(*args):
    ranges.append(real_ranges(*args))
    return ranges[-1]
ray_leakage.task_ranges = task_ranges

work = Path(sys.argv[1])
address = None if sys.argv[4] == "local" else sys.argv[4]
scenarios = json.loads((work / "scenarios.json").read_text())
with ray_engine_session(address, int(sys.argv[2]), work / "spill") as engine:
    for name, sc in scenarios.items():
        out = work / name
        (out / "art").mkdir(parents=True, exist_ok=True)
        ctx = StepContext(step="lk", pipeline="p", seed=int(sys.argv[3]), artifacts_dir=out / "art")
        inputs = {"input": pl.scan_parquet(sc["input"]),
                  "against": [pl.scan_parquet(p) for p in sc["evals"]]}
        engine.local.batch_rows = sc["batch_rows"]
        engine.local.part_max_rows = sc["part_rows"]
        params = LeakageConfig(**sc["params"])
        parts, output = Leakage().run_bounded(engine, inputs, params, ctx, out / "parts")
        (out / "tables").mkdir()
        for key, table in output.tables.items():
            table.write_ipc(out / "tables" / f"{key}.arrow")
        left = sorted(p.name for p in (work / "spill").glob("ray-leakage-*"))
        (out / "result.json").write_text(json.dumps({
            "parts_hash": parts_hash(parts), "parts": len(parts), "report": output.report,
            "tables": list(output.tables), "nodes": sorted(engine.nodes),
            "batch_rows": engine.stats.batch_rows, "timings": engine.timings,
            "chunk_bytes": engine.shuffle_bytes, "spill_left": left, "ranges": ranges[-1]}))
        print(name, "done", flush=True)
"""


def _env(tmp: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return {**clean, **loopback_environ(loopback_home(tmp)), "PYTHONPATH": str(ROOT)}


def _run_on_ray(
    work: Path, names: list[str], env: dict[str, str], address: str = "local"
) -> dict[str, Any]:
    """The scenarios `names` whose data is here, run by the Ray engine in one driver subprocess
    (a local instance, or the cluster at `address`): name -> (result, tables, input, evals,
    spec)."""
    specs, frames = {}, {}
    for name in names:
        sc = SCENARIOS[name]
        data = _data(sc["data"])
        if data is None:
            continue
        df, evals = data
        df.write_parquet(work / f"{name}-input.parquet")
        paths = []
        for i, ev in enumerate(evals):
            ev.write_parquet(work / f"{name}-eval{i}.parquet")
            paths.append(str(work / f"{name}-eval{i}.parquet"))
        specs[name] = {
            "input": str(work / f"{name}-input.parquet"),
            "evals": paths,
            "params": sc["params"],
            "batch_rows": sc["batch_rows"],
            "part_rows": sc["part_rows"],
        }
        frames[name] = (df, evals)
    (work / "scenarios.json").write_text(json.dumps(specs))
    (work / "driver.py").write_text(DRIVER)
    run = subprocess.run(
        [PYTHON, str(work / "driver.py"), str(work), str(parse_size(LIMIT)), str(SEED), address],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    runs = {}
    for name, spec in specs.items():
        result = json.loads((work / name / "result.json").read_text())
        tables = {k: pl.read_ipc(work / name / "tables" / f"{k}.arrow") for k in result["tables"]}
        runs[name] = (result, tables, *frames[name], spec)
    return runs


@pytest.fixture(scope="module")
def ray_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every scenario, on a local Ray instance (2 CPUs) in one driver subprocess."""
    pytest.importorskip("ray")
    work = tmp_path_factory.mktemp("ray-leakage")
    return _run_on_ray(work, list(SCENARIOS), _env(work))


def _local_and_in_memory(
    tmp: Path, df: pl.DataFrame, evals: list[pl.DataFrame], spec: dict[str, Any]
) -> tuple[tuple[str, Any, Any], tuple[str, Any, Any]]:
    """(parts hash, report, tables) of the local bounded engine and of the in-memory run."""
    params = LeakageConfig(**spec["params"])
    inputs: dict[str, Any] = {"input": df.lazy(), "against": [e.lazy() for e in evals]}
    whole = Leakage().run(inputs, params, _ctx(tmp / "m"))
    data = whole.frames["data"]
    assert isinstance(data, pl.DataFrame)
    mem = write_frame_parts(data, tmp / "mem", max_rows=spec["part_rows"] or 10**9)
    engine = BoundedEngine(
        memory_limit=parse_size(LIMIT),
        spill_root=tmp / "spill",
        batch_rows=spec["batch_rows"],
        part_max_rows=spec["part_rows"],
    )
    parts, out = Leakage().run_bounded(engine, inputs, params, _ctx(tmp / "l"), tmp / "l" / "o")
    return (parts_hash(parts), out.report, out.tables), (
        parts_hash(mem),
        whole.report,
        whole.tables,
    )


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _check_same(tmp: Path, run: tuple[Any, ...]) -> dict[str, Any]:
    """The Ray run's parts hash, report and tables equal the local engine's and the in-memory
    run's; returns the report."""
    result, tables, df, evals, spec = run
    local, mem = _local_and_in_memory(tmp, df, evals, spec)
    assert result["parts_hash"] == local[0] == mem[0]
    assert result["report"] == _json(local[1]) == _json(mem[1])
    assert result["tables"] == list(local[2]) == list(mem[2])
    for key, table in local[2].items():
        assert tables[key].equals(table), key
        assert mem[2][key].equals(table), key
    # really distributed: several tasks of whole batches, on Ray, their spill removed
    assert result["batch_rows"] == spec["batch_rows"]
    starts = [start for start, _ in result["ranges"]]
    assert len(starts) > 1 and all(s % spec["batch_rows"] == 0 for s in starts)
    assert sum(n for _, n in result["ranges"]) == df.height
    assert result["nodes"] and result["chunk_bytes"] > 0 and not result["spill_left"]
    assert result["timings"]["scan"] > 0
    return dict(result["report"])


@pytest.mark.parametrize("name", ["planted_drop", "planted_flag"])
def test_planted_overlaps_on_ray_equal_local_and_in_memory(
    ray_runs: dict[str, Any], tmp_path: Path, name: str
) -> None:
    report = _check_same(tmp_path, ray_runs[name])
    rep = report["against"]["against_0"]
    for check in ("exact", "ngram", "near", "group", "temporal"):
        assert check in rep
    assert rep["exact"]["input_rows"] > 0 and rep["near"]["pairs"] > 0
    assert rep["exact"]["conflicting_labels"]["input_rows"] > 0
    assert report["leaked_rows"] > 0
    if name == "planted_flag":
        assert ray_runs[name][1]["against_0_ngram"].height == 50  # the capped table was capped


@pytest.mark.parametrize("name", ["sms_flag", "sms_drop"])
def test_sms_spam_on_ray_equals_local_in_memory_and_plain_python(
    ray_runs: dict[str, Any], tmp_path: Path, name: str
) -> None:
    if name not in ray_runs:
        pytest.skip("SMS Spam is not in the shared datasets")
    report = _check_same(tmp_path, ray_runs[name])
    _, tables, train, (test,), spec = ray_runs[name]
    rep = report["against"]["against_0"]
    # exact (Label, SMS) overlap against plain Python sets
    pairs = set(test.select("Label", "SMS").rows())
    train_rows = train.select("Label", "SMS").rows()
    assert rep["exact"]["input_rows"] == sum(r in pairs for r in train_rows) > 0
    train_set = set(train_rows)
    assert rep["exact"]["eval_rows"] == sum(r in train_set for r in test.rows()) > 0
    assert rep["ngram"]["contaminated_eval_items"] > 0 and rep["near"]["pairs"] > 0
    assert rep["near"]["pairs"] == tables["against_0_near"].height
    assert "target_leakage" in report and report["rows_in"] == train.height
    if spec["params"]["action"] == "drop":
        assert report["removed"] == report["leaked_rows"] > rep["exact"]["input_rows"]


@pytest.mark.parametrize("name", ["adult_drop", "adult_flag"])
def test_uci_adult_on_ray_equals_local_in_memory_and_plain_python(
    ray_runs: dict[str, Any], tmp_path: Path, name: str
) -> None:
    if name not in ray_runs:
        pytest.skip("UCI Adult is not in the shared datasets")
    report = _check_same(tmp_path, ray_runs[name])
    _, tables, train, (test,), spec = ray_runs[name]
    rep = report["against"]["against_0"]
    # exact rows over every column but the label, group and time (nulls equal nulls)
    key = [c for c in train.columns if c not in ("income", "fnlwgt", "age")]
    assert rep["exact"]["columns"] == key
    test_keys = set(test.select(key).rows())
    train_keys = train.select(key).rows()
    exact = {i for i, r in enumerate(train_keys) if r in test_keys}
    assert rep["exact"]["input_rows"] == len(exact) > 0
    train_set = set(train_keys)
    assert rep["exact"]["eval_rows"] == sum(r in train_set for r in test.select(key).rows())
    labels: dict[tuple[Any, ...], set[str]] = {}
    for r, label in zip(test.select(key).rows(), test["income"].to_list(), strict=True):
        labels.setdefault(r, set()).add(label)
    conflicts = sum(
        bool(labels.get(r, set()) - {label})
        for r, label in zip(train_keys, train["income"].to_list(), strict=True)
    )
    assert rep["exact"]["conflicting_labels"]["input_rows"] == conflicts > 0
    shared = set(train["fnlwgt"].to_list()) & set(test["fnlwgt"].to_list())
    assert rep["group"]["shared_groups"] == len(shared) > 0
    grouped = {i for i, g in enumerate(train["fnlwgt"].to_list()) if g in shared}
    assert rep["group"]["input_rows"] == len(grouped)
    start = min(test["age"].to_list())
    assert rep["temporal"]["input_rows_after_eval_start"] == sum(
        a > start for a in train["age"].to_list()
    )
    assert report["leaked_rows"] == len(exact | grouped)  # drop_on: exact and group only
    assert tables["target_leakage"].height == len(train.columns) - 3
    if spec["params"]["action"] == "drop":
        assert report["removed"] == len(exact | grouped)


# ---- the scan's states merged in source order: no Ray needed ----------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_scan_states_merged_in_source_order_equal_one_scan(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random ranges, each through a fresh copy of the built scan (pickled, as Ray ships it);
    their states through Ray's result format (JSON + Arrow IPC) merged on a scan that saw no
    rows: the rows, report and tables of one scan of the whole input."""
    import pickle

    from tamis.pipelines.engines import ray_files

    monkeypatch.setattr(ray_files, "node_id", lambda: "here")
    module = _bounded_tests()
    df, ev = module._planted(600, 100, seed=seed)
    rng = np.random.default_rng(seed)
    params = LeakageConfig(
        **PLANTED_RAW,
        columns=["text"],
        label="label",
        action=("drop", "flag", "report")[seed % 3],
        max_table_rows=int(rng.integers(5, 80)),
    )
    evals = {"a": ev, "b": ev.sample(30, seed=seed)}
    out, report, tables = find_leakage(df, evals, params, seed=SEED)
    scan = LeakageScan(df.schema, evals, params, SEED)
    shipped = pickle.dumps(scan)
    cuts = np.unique(np.concatenate([[0, df.height], rng.integers(1, df.height, 8)]))
    rows = []
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        copy = pickle.loads(shipped)
        copy.fresh()
        rows.append(copy.batch(df.slice(int(lo), int(hi - lo)), int(lo)))
        counts, frames = copy.state()
        meta, back = ray_files.unpack(ray_files.pack({"counts": counts}, frames))
        scan.merge((meta["counts"], back))
    got, got_tables = scan.finish(df.select(target_columns(df.schema, params)))
    assert pl.concat(rows).equals(out)
    assert got == report
    assert list(got_tables) == list(tables)
    for key, table in tables.items():
        assert got_tables[key].equals(table), key


# ---- tamis build --engine ray ------------------------------------------------------------------


@pytest.mark.slow
def test_cli_build_on_ray_equals_the_local_build_and_the_in_memory_check(tmp_path: Path) -> None:
    """normalize -> dedup -> leakage against a held-out set (drop), `tamis build --engine ray`
    and `--engine local` under an 8MB limit (many scan tasks): same content hash per step, and
    the leakage report equals the in-memory `find_leakage` on the dedup step's output."""
    pytest.importorskip("ray")
    module = _bounded_tests()
    df, ev = module._planted(3000, 300, seed=9)
    df.write_parquet(tmp_path / "corpus.parquet")
    ev.write_parquet(tmp_path / "held.parquet")
    spec = {
        "name": "c",
        "seed": 2,
        "sources": {
            "corpus": {"path": str(tmp_path / "corpus.parquet")},
            "held": {"path": str(tmp_path / "held.parquet")},
        },
        "steps": {
            "clean": {"use": "normalize", "input": "corpus"},
            "unique": {"use": "dedup", "input": "clean", "params": {"columns": ["text"]}},
            "leak": {
                "use": "leakage",
                "input": "unique",
                "against": ["held"],
                "params": {**PLANTED_RAW, "columns": ["text"], "label": "label", "action": "drop"},
            },
        },
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(spec))
    tamis = str(Path(PYTHON).parent / "tamis")
    stores = {}
    for engine in ("local", "ray"):
        store = tmp_path / f"st-{engine}"
        run = subprocess.run(
            [tamis, "build", str(tmp_path / "c.yaml"), "--store", str(store)]
            + ["--memory-limit", "8MB", "--engine", engine, "--json"],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert run.returncode == 0, run.stderr[-4000:]
        assert "Traceback" not in run.stderr
        stores[engine] = (store, json.loads(run.stdout))
    from tamis.pipelines.store import Store

    local, ray_store = Store(stores["local"][0]), Store(stores["ray"][0])
    for step in ("clean", "unique", "leak"):
        assert (
            ray_store.manifest(f"c/{step}")["content_hash"]
            == local.manifest(f"c/{step}")["content_hash"]
        ), step
    assert stores["ray"][1]["engine"]["batch_rows"] < 1000  # the leakage scan ran in many tasks
    report = ray_store.manifest("c/leak")["report"]
    assert report == local.manifest("c/leak")["report"]
    unique = ray_store.read("c/unique")
    params = LeakageConfig(**PLANTED_RAW, columns=["text"], label="label", action="drop")
    out, expected, _ = find_leakage(unique, {"against_0": ev}, params, seed=2)
    for key, value in expected.items():
        assert report[key] == _json(value), key
    assert ray_store.read("c/leak").equals(out)
    assert report["removed"] > 0 and report["rows_in"] == unique.height


@pytest.mark.parametrize(
    ("total", "batch", "tasks"), [(1, 5, 8), (900, 37, 8), (10**6, 751, 8), (40, 1, 3)]
)
def test_task_ranges_are_whole_batches_covering_the_input(
    total: int, batch: int, tasks: int
) -> None:
    from tamis.pipelines.engines.ray_leakage import task_ranges

    ranges = task_ranges(total, batch, tasks)
    assert [s for s, _ in ranges] == list(np.cumsum([0] + [n for _, n in ranges[:-1]]))
    assert sum(n for _, n in ranges) == total and all(n > 0 for _, n in ranges)
    assert all(s % batch == 0 for s, _ in ranges) and len(ranges) <= tasks
    assert len(ranges) > min(tasks, -(-total // batch)) / 2  # the CPUs kept busy


# ---- a three-node loopback cluster -------------------------------------------------------------


@pytest.fixture
def cluster(tmp_path: Path) -> Any:
    """The Ray engine tests' loopback cluster: a head (0 CPUs) and two 1-CPU worker nodes."""
    pytest.importorskip("ray")
    spec = importlib.util.spec_from_file_location("_ray_engine_tests", HERE / "test_ray_engine.py")
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
def test_leakage_on_a_three_node_loopback_cluster_equals_the_local_engine(
    cluster: Any, tmp_path: Path
) -> None:
    """The scan tasks land on both worker nodes; same parts, report and tables."""
    work = tmp_path / "w"
    work.mkdir()
    runs = _run_on_ray(work, ["planted_drop", "sms_flag"], cluster.env, cluster.address)
    for name, run in runs.items():
        _check_same(tmp_path / name, run)
        assert len(run[0]["nodes"]) == 2, (name, run[0]["nodes"])  # tasks on both workers
