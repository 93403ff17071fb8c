"""`tamis build` within a memory limit: the same versions whatever the limit, a global step over
the limit refused before it starts, a kill -9 mid-spill leaves no half version, a JSONL source
larger than the limit imports within it, and normalize parses dates by one plan."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from tamis.cli import app
from tamis.pipelines.call import run_step
from tamis.pipelines.engines.local import BoundedEngine
from tamis.pipelines.engines.memory import parse_size
from tamis.pipelines.runner import build
from tamis.pipelines.steps.base import StepContext
from tamis.pipelines.store import Store

ADULT = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "adult" / "adult.data"
needs_adult = pytest.mark.skipif(not ADULT.exists(), reason="shared datasets are not here")


def _pipeline(tmp_path: Path, steps: dict[str, Any] | None = None) -> Path:
    """normalize -> filter (map) -> dedup (keyed) -> sample (global) over UCI Adult."""
    spec = {
        "name": "b",
        "seed": 3,
        "sources": {"adult": {"path": str(ADULT)}},
        "steps": steps
        or {
            "clean": {"use": "normalize", "input": "adult", "params": {"null_values": ["?"]}},
            "older": {"use": "filter", "input": "clean", "params": {"where": "age >= 50"}},
            "unique": {"use": "dedup", "input": "older"},
            "few": {"use": "sample", "input": "unique", "params": {"n": 1000}},
        },
    }
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _hashes(result: Any) -> dict[str, tuple[str, str, int]]:
    return {k: (m["id"], m["content_hash"], m["rows"]) for k, m in result.versions.items()}


def _tiny_engine(store: Store, limit: str = "4MB", batch_rows: int = 1000) -> BoundedEngine:
    return BoundedEngine(
        memory_limit=parse_size(limit), spill_root=store.tmp_dir, batch_rows=batch_rows
    )


@needs_adult
def test_the_same_versions_under_a_huge_and_a_tiny_limit(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    big = build(pipeline, Store(tmp_path / "big"), memory_limit=parse_size("64GB"))
    small_store = Store(tmp_path / "small")
    engine = _tiny_engine(small_store)
    small = build(pipeline, small_store, engine=engine)
    assert _hashes(small) == _hashes(big)
    assert engine.stats.buckets > 1 and engine.stats.batch_rows == 1000
    assert big.versions["unique"]["rows"] < big.versions["older"]["rows"]  # duplicates dropped
    # the spill and parts directories are gone once the build ends
    assert not any(small_store.tmp_dir.iterdir())


@needs_adult
def test_many_small_parts_give_the_same_versions_whatever_the_limit(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    hashes = []
    for name, limit, rows in (("a", "64GB", None), ("b", "4MB", 401)):
        store = Store(tmp_path / name)
        engine = BoundedEngine(parse_size(limit), store.tmp_dir, batch_rows=rows, part_max_rows=700)
        result = build(pipeline, store, engine=engine)
        hashes.append(_hashes(result))
        assert len(result.versions["older"]["parts"]) > 5
    assert hashes[0] == hashes[1]


@needs_adult
def test_a_global_step_over_the_limit_fails_before_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tamis.pipelines.steps import sample

    started: list[str] = []
    real = sample.Sample.run

    def spy(self: Any, *args: Any, **kw: Any) -> Any:
        started.append("sample")
        return real(self, *args, **kw)

    monkeypatch.setattr(sample.Sample, "run", spy)
    pipeline = _pipeline(
        tmp_path, {"few": {"use": "sample", "input": "adult", "params": {"n": 10}}}
    )
    st = str(tmp_path / "st")
    res = CliRunner().invoke(app, ["build", str(pipeline), "--store", st, "--memory-limit", "2MB"])
    assert res.exit_code == 1, res.output
    text = " ".join(res.output.split())
    assert "memory limit 2.0 MB (--memory-limit)" in text
    assert "step 'few'" in text and "needs its whole input in memory" in text
    assert "over the memory limit of 2.0 MB" in text and "MB for 32,561 rows" in text
    assert "`sample`" in text and "--memory-limit" in text and "Traceback" not in text
    assert started == []  # refused before it started
    ok = CliRunner().invoke(app, ["build", str(pipeline), "--store", st, "--json"])
    assert ok.exit_code == 0 and started == ["sample"]
    assert "memory limit" in ok.stderr and "half of this machine's memory" in ok.stderr


KILL_MID_SPILL = """
import os, signal, sys
from tamis.pipelines.engines.local import BoundedEngine
from tamis.pipelines.engines.spill_files import SpillFiles
from tamis.pipelines.runner import build
from tamis.pipelines.store import Store

real = SpillFiles.append
count = [0]
def append(self, directory, frame):
    real(self, directory, frame)
    count[0] += 1
    if count[0] == 40 and "keyed" in str(directory):  # mid-spill of the dedup step
        os.kill(os.getpid(), signal.SIGKILL)
SpillFiles.append = append
store = Store(sys.argv[2])
build(sys.argv[1], store, engine=BoundedEngine(4_000_000, store.tmp_dir, batch_rows=1000))
"""


@needs_adult
def test_a_build_killed_mid_spill_leaves_no_half_version_and_resumes(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    st = tmp_path / "st"
    proc = subprocess.run(
        [sys.executable, "-c", KILL_MID_SPILL, str(pipeline), str(st)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    store = Store(st)
    on_disk = {p.name for p in store.versions_dir.iterdir()}
    assert len(on_disk) == 3  # adult, clean, older: the dedup step never finished
    assert any(store.tmp_dir.iterdir())  # the killed build's spill is litter in tmp/
    resumed = build(pipeline, store, engine=_tiny_engine(store))
    assert [s.status for s in resumed.steps] == ["cached", "cached", "built", "built"]
    assert not any(store.tmp_dir.iterdir())  # the litter of the dead build was cleared
    # rebuilt in memory-rich conditions, the finished steps give the same rows (a forced
    # rebuild whose rows differed would keep the old ones aside and warn)
    again = build(pipeline, store, force=["unique", "few"], memory_limit=parse_size("64GB"))
    assert _hashes(again) == _hashes(resumed)
    assert not any(s.warnings for s in again.steps)


CHILD_PEAK = """
import json, sys, threading, time
from tamis.pipelines.engines.local import BoundedEngine
from tamis.pipelines.runner import build
from tamis.pipelines.store import Store

def anon():  # resident anonymous memory (the input file's mapped pages are not counted)
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon"):
            return int(line.split()[1]) * 1024
peak, stop = [0], threading.Event()
def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], anon())
        time.sleep(0.005)
before = anon()
threading.Thread(target=sample, daemon=True).start()
store = Store(sys.argv[2])
engine = BoundedEngine(int(sys.argv[3]), store.tmp_dir, part_max_bytes=4_000_000)
result = build(sys.argv[1], store, engine=engine)
stop.set()
time.sleep(0.02)
print(json.dumps({"growth": peak[0] - before, "rows": result.versions["docs"]["rows"],
                  "parts": len(result.versions["docs"]["parts"]), "read": engine.stats.rows_in}))
"""


def _jsonl(path: Path, rows: int) -> int:
    words = "the quick brown fox jumps over the lazy dog and keeps running far " * 6
    ids = pl.int_range(0, rows, eager=True).alias("id")
    text = pl.lit(words).str.slice(pl.col("id") % 50, 200 + pl.col("id") % 300)
    pl.DataFrame(ids).with_columns(text=text).write_ndjson(path)
    return path.stat().st_size


def _import_peak(tmp_path: Path, name: str, rows: int, limit: int) -> tuple[int, dict[str, Any]]:
    size = _jsonl(tmp_path / f"{name}.jsonl", rows)
    spec = {"name": name, "sources": {"docs": {"path": f"{name}.jsonl"}}, "steps": {}}
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(spec))
    args = [str(tmp_path / f"{name}.yaml"), str(tmp_path / f"st_{name}"), str(limit)]
    env = {**os.environ, "TAMIS_MEMORY_BUDGET": "1M"}  # a whole-file read would be refused
    proc = subprocess.run(
        [sys.executable, "-c", CHILD_PEAK, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return size, json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_a_jsonl_source_larger_than_the_limit_imports_within_it(tmp_path: Path) -> None:
    limit = 8_000_000
    small_size, small = _import_peak(tmp_path, "small", 60_000, limit)
    big_size, big = _import_peak(tmp_path, "big", 180_000, limit)
    assert big_size > 5 * limit and big["rows"] == big["read"] == 180_000
    assert small["parts"] > 2 and big["parts"] > 3 * small["parts"] - 3
    # streamed: three times the file costs no more memory than the file, past the engine's
    # fixed overhead (a whole read would grow by at least the 40 MB difference in size)
    assert big["growth"] - small["growth"] < (big_size - small_size) / 4, (small, big)


def test_normalize_infers_a_date_format_once_for_every_batch(tmp_path: Path) -> None:
    """A batch starting with '05/01/2024' would infer day/month/year on its own; the plan
    (from the input's first value, ISO) parses every batch alike."""
    df = pl.DataFrame({"d": ["2024-01-05", "2024-02-07", "05/01/2024", "2024-03-01"]})
    params = {"cast": {"d": "date"}, "strict_cast": False}
    whole = run_step("normalize", {"input": df}, params).frames["data"]
    assert isinstance(whole, pl.DataFrame)
    assert whole["d"].to_list()[2] is None  # not ISO: null under the one format
    from tamis.config import load_config
    from tamis.pipelines.registry import get_step_type

    step_type = get_step_type("normalize")
    parsed = load_config(step_type.Params, params, file="<t>", step="n", what="normalize")
    ctx = StepContext(step="n", pipeline="t", seed=0, artifacts_dir=tmp_path)
    engine = BoundedEngine(parse_size("64MB"), tmp_path / "s", batch_rows=2)
    parts, _ = engine.run_step(step_type(), {"input": df.lazy()}, parsed, ctx, tmp_path / "o")
    batched = pl.concat([pl.read_parquet(tmp_path / "o" / p["path"]) for p in parts])
    assert batched.equals(whole)
    assert os.path.isdir(tmp_path / "o")
