"""Refs and catalog that survive a crash (issue 13, section 3): refs move together, the catalog
is rebuilt from the version dirs and refs.log, litter is cleaned and lost rows re-indexed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import yaml
from typer.testing import CliRunner

from tamis.cli import app
from tamis.pipelines.runner import build
from tamis.pipelines.store import Store

runner = CliRunner()


def _refs(store: Store) -> dict[str, str]:
    return {
        r["ref"]: r["version_id"]
        for r in store.catalog.query("SELECT ref, version_id FROM refs ORDER BY ref")
    }


KILLED = """
import os, sys
from tamis.pipelines import runner
real = runner._call
def die(step, inputs, params, ctx, **kw):
    if ctx.step == "boot":
        os._exit(9)  # as a kill -9 mid-build: no cleanup, no final flush
    return real(step, inputs, params, ctx, **kw)
runner._call = die
runner.build(sys.argv[1], runner.Store(sys.argv[2]))
"""


def test_a_killed_build_leaves_all_refs_of_the_previous_build(
    pipeline_dir: Path, tmp_path: Path
) -> None:
    store = Store(tmp_path / "st")
    build(pipeline_dir / "pipeline.yaml", store)
    before = _refs(store)
    assert len(before) == 7
    spec = yaml.safe_load((pipeline_dir / "pipeline.yaml").read_text())
    spec["steps"]["small"]["params"]["n"] = 400  # new small and boot versions
    (pipeline_dir / "pipeline.yaml").write_text(yaml.safe_dump(spec))
    proc = subprocess.run(
        [sys.executable, "-c", KILLED, str(pipeline_dir / "pipeline.yaml"), str(store.root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 9, proc.stderr[-2000:]
    # the new `small` version was written, but no ref moved: refs never mix two builds
    assert len(list(store.versions_dir.iterdir())) == 8
    assert _refs(store) == before
    result = build(pipeline_dir / "pipeline.yaml", store)
    after = _refs(store)
    assert after["p/small"] == result.versions["small"]["id"] != before["p/small"]
    assert after["p/boot"] == result.versions["boot"]["id"] != before["p/boot"]
    assert after["p/clean"] == before["p/clean"]


def test_a_deleted_catalog_is_rebuilt_with_its_refs(
    cli: Any, pipeline_dir: Path, tmp_path: Path
) -> None:
    st = str(tmp_path / "st")
    cli("build", str(pipeline_dir / "pipeline.yaml"), "--store", st, "--json")
    before = {v["id"]: v["refs"] for v in cli("versions", "--store", st, "--json")["versions"]}
    assert len(before) == 7 and all(before.values())
    (Path(st) / "catalog.duckdb").unlink()
    after = {v["id"]: v["refs"] for v in cli("versions", "--store", st, "--json")["versions"]}
    assert after == before  # not "0 versions"
    assert cli("show", "p/small", "--store", st, "--json")["rows"] == 500


def test_a_garbage_catalog_is_set_aside_and_rebuilt(
    cli: Any, pipeline_dir: Path, tmp_path: Path
) -> None:
    st = Path(tmp_path / "st")
    cli("build", str(pipeline_dir / "pipeline.yaml"), "--store", str(st), "--json")
    refs = _refs(Store(st))
    (st / "catalog.duckdb").write_bytes(b"this is not a database" * 100)
    res = runner.invoke(
        app, ["build", str(pipeline_dir / "pipeline.yaml"), "--store", str(st), "--json"]
    )
    assert res.exit_code == 0, res.output
    assert "warning" in res.stderr and "damaged" in res.stderr
    assert {s["status"] for s in json.loads(res.stdout)["steps"]} == {"cached"}
    assert _refs(Store(st)) == refs
    kept = list((st / "damaged").glob("catalog.*.duckdb"))
    assert len(kept) == 1 and kept[0].read_bytes().startswith(b"this is not")


def test_verify_repair_rebuilds_the_catalog(cli: Any, pipeline_dir: Path, tmp_path: Path) -> None:
    store = Store(tmp_path / "st")
    build(pipeline_dir / "pipeline.yaml", store)
    refs = _refs(store)
    bad = refs["p/boot"]
    with open(store.data_files(bad)[0], "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00" * 40)
    with duckdb.connect(str(store.catalog.path)) as con:  # lose refs and rows
        con.execute("DELETE FROM refs WHERE ref LIKE 'p/%'")
        con.execute("DELETE FROM versions WHERE id = ?", [refs["p/clean"]])
    res = cli("verify", "--store", str(store.root), "--json", code=1)
    assert {p["kind"] for p in res["problems"]} >= {"damaged", "not indexed"}
    res = cli("verify", "--repair", "--store", str(store.root), "--json")
    assert res["ok"] is True and res["after_repair"]["problems"] == []
    assert list(res["repair"]["set_aside"]) == [bad]
    assert res["repair"]["versions"] == 6 and res["repair"]["old_catalog"]
    assert _refs(store) == {k: v for k, v in refs.items() if v != bad}
    assert cli("verify", "--store", str(store.root), "--json")["ok"] is True
    # the next build rebuilds what was set aside
    result = build(pipeline_dir / "pipeline.yaml", store)
    assert [s.status for s in result.steps][-1] == "built"
    assert _refs(store) == refs


def _write(store: Store, n: int) -> str:
    vid = f"{n:064x}"
    store.write_version(
        version_id=vid,
        name=f"w/{n}",
        frame=pl.DataFrame({"a": [n]}),
        parents=[],
        step={"name": "w", "type": "test"},
        seed=0,
    )
    return vid


def test_the_next_write_reindexes_and_cleans_tmp(tmp_path: Path) -> None:
    store = Store(tmp_path / "st")
    lost = _write(store, 1)
    with duckdb.connect(str(store.catalog.path)) as con:  # a writer killed before its row
        con.execute("DELETE FROM versions WHERE id = ?", [lost])
    old = store.tmp_dir / f"{'0' * 64}.123.deadbeef"
    old.mkdir()
    (old / "data.parquet").write_bytes(b"half")
    fresh = store.tmp_dir / "artifacts.live"
    fresh.mkdir()
    day_ago = time.time() - 86400
    os.utime(old, (day_ago, day_ago))
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], text=True, capture_output=True
    ).stdout.strip()
    dead = store.tmp_dir / f"{'1' * 64}.{gone}.cafe0001"  # a writer that was killed just now
    dead.mkdir()
    live = store.tmp_dir / f"{'2' * 64}.1.cafe0002"  # pid 1 is alive: may be writing
    live.mkdir()
    store = Store(store.root)  # the next process
    _write(store, 2)
    assert {v["id"] for v in store.list_versions()} == {lost, f"{2:064x}"}
    assert not old.exists() and not dead.exists()
    assert fresh.exists() and live.exists()  # what may be live stays


def test_an_invalid_manifest_is_set_aside_and_rebuilt(pipeline_dir: Path, tmp_path: Path) -> None:
    store = Store(tmp_path / "st")
    build(pipeline_dir / "pipeline.yaml", store)
    vid = store.resolve("p/adults")
    (store.version_dir(vid) / "manifest.json").write_text("{ not json")
    result = build(pipeline_dir / "pipeline.yaml", store)  # no --force needed
    adults = next(s for s in result.steps if s.name == "adults")
    assert adults.status == "built" and "repairing" in adults.warnings[0]
    assert store.manifest_by_id(vid)["rows"] == store.read("p/adults").height
    aside = [p for p in store.damaged_dir.iterdir() if p.name.startswith(vid)]
    assert (aside[0] / "manifest.json").read_text() == "{ not json"  # kept, not deleted


def test_refs_of_a_failed_build_that_are_stale_are_shown(
    cli: Any, pipeline_dir: Path, tmp_path: Path, build_failing_at: Any
) -> None:
    store = Store(tmp_path / "st")
    build(pipeline_dir / "pipeline.yaml", store)
    assert store.stale_refs() == {}
    spec = yaml.safe_load((pipeline_dir / "pipeline.yaml").read_text())
    spec["steps"]["small"]["params"]["n"] = 400
    (pipeline_dir / "pipeline.yaml").write_text(yaml.safe_dump(spec))
    build_failing_at(pipeline_dir / "pipeline.yaml", store, "boot", "failed")
    # p/small moved to the new version, p/boot still names one built from the old p/small
    stale = store.stale_refs()
    assert list(stale) == ["p/boot"] and "p/small" in stale["p/boot"]
    rows = cli("versions", "--store", str(store.root), "--json")["versions"]
    assert [r for v in rows for r in v["stale_refs"]] == ["p/boot"]
    assert "p/boot (stale)" in cli("versions", "--store", str(store.root))
    build(pipeline_dir / "pipeline.yaml", store)
    assert store.stale_refs() == {}
