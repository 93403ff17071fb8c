"""What the store serves is what it wrote: `tamis verify`, checked reads, damaged cache hits
rebuilt, only real ids and exact refs resolve (issue 13, section 2)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tamis.cli import app
from tamis.errors import StoreError
from tamis.pipelines.runner import build
from tamis.pipelines.store import Store

runner = CliRunner()


def _flip(path: Path, n: int = 60) -> None:
    """Flip n bytes in the middle of a file, keeping its size (bit rot, a bad edit)."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, mid + n):
        data[i] ^= 0xFF
    with open(path, "r+b") as fh:  # in place, as a disk or an editor would
        fh.write(bytes(data))


@pytest.fixture
def built(pipeline_dir: Path, tmp_path: Path) -> Store:
    store = Store(tmp_path / "st")
    build(pipeline_dir / "pipeline.yaml", store)
    return store


def test_verify_is_clean_after_a_build(cli: Any, built: Store) -> None:
    res = cli("verify", "--store", str(built.root), "--json")
    assert res["ok"] is True and res["problems"] == []
    assert res["versions_checked"] == 7 == len(list(built.versions_dir.iterdir()))
    assert cli("verify", "p/small", "--store", str(built.root), "--json")["versions_checked"] == 1


def test_flipped_bytes_are_found_refused_on_read_and_rebuilt(
    cli: Any, built: Store, pipeline_dir: Path
) -> None:
    vid = built.resolve("p/clean")
    before = built.read(vid)
    _flip(built.data_files(vid)[0])
    # verify: exit 1, naming the version
    res = cli("verify", "--store", str(built.root), "--json", code=1)
    assert res["ok"] is False
    assert [(p["kind"], p["version"]) for p in res["problems"]] == [("damaged", vid)]
    assert "content hash" in res["problems"][0]["detail"]
    human = cli("verify", "--store", str(built.root), code=1)
    assert "damaged" in human and "tamis verify --repair" in human
    # reads: a clear error, never altered rows or a Polars traceback
    with pytest.raises(StoreError, match=r"is damaged: .*content hash") as info:
        built.read("p/clean")
    assert "tamis verify" in info.value.render()
    with pytest.raises(StoreError, match="is damaged"):
        built.scan("p/clean")
    out = cli("show", "p/clean", "--rows", "3", "--store", str(built.root), code=1)
    assert "damaged" in out
    # a rebuild does not call it cached: it sets it aside and says it repairs it
    result = build(pipeline_dir / "pipeline.yaml", built)
    clean = next(s for s in result.steps if s.name == "clean")
    assert clean.status == "built"
    assert any("damaged" in w and "repairing" in w for w in clean.warnings)
    assert built.read("p/clean").equals(before)
    aside = list(built.damaged_dir.iterdir())
    assert len(aside) == 1 and aside[0].name.startswith(vid)  # kept, not deleted
    assert cli("verify", "--store", str(built.root), "--json")["ok"] is True


def test_force_over_a_damaged_version_says_it_repairs_it(
    cli: Any, built: Store, pipeline_dir: Path
) -> None:
    vid = built.resolve("p/small")
    (built.version_dir(vid) / "manifest.json").unlink()  # a missing manifest blocked rebuilds
    res = runner.invoke(
        app,
        [
            "build",
            str(pipeline_dir / "pipeline.yaml"),
            "small",
            "--force",
            "--store",
            str(built.root),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "repairing" in res.output and "manifest.json is missing" in res.output
    assert built.read("p/small").height == 500
    assert cli("verify", "--store", str(built.root), "--json")["ok"] is True


def test_a_swapped_in_parquet_of_another_version_is_not_served(cli: Any, built: Store) -> None:
    small, boot = built.resolve("p/small"), built.resolve("p/boot")
    shutil.copyfile(
        built.data_files(boot)[0], built.data_files(small)[0]
    )  # same rows count, other data
    with pytest.raises(StoreError, match="is damaged"):
        built.read("p/small")
    res = cli("verify", "p/small", "--store", str(built.root), "--json", code=1)
    assert {p["version"] for p in res["problems"]} == {small}


def test_truncated_data_is_a_clear_error(cli: Any, built: Store) -> None:
    vid = built.resolve("p/adults")
    path = built.data_files(vid)[0]
    os.truncate(path, path.stat().st_size // 2)
    with pytest.raises(StoreError, match=r"bytes, the manifest says"):
        built.read(vid)
    res = cli("verify", "--store", str(built.root), "--json", code=1)
    assert res["problems"][0]["version"] == vid


def test_verify_compares_rows_schema_and_catalog(cli: Any, built: Store) -> None:
    vid = built.resolve("p/small")
    manifest_path = built.version_dir(vid) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["rows"] == pq.read_metadata(built.data_files(vid)[0]).num_rows == 500
    manifest["rows"] = 499
    manifest["schema"][0]["dtype"] = "String"
    manifest_path.write_text(json.dumps(manifest))
    res = cli("verify", "--store", str(built.root), "--json", code=1)
    details = {p["detail"] for p in res["problems"] if p.get("version") == vid}
    assert any("500 rows, the manifest says 499" in d for d in details)
    assert any("schema" in d for d in details)
    assert any("catalog row differs" in d for d in details)


def test_verify_finds_catalog_rows_and_refs_without_versions(cli: Any, built: Store) -> None:
    vid = built.resolve("p/boot")
    shutil.move(str(built.version_dir(vid)), str(built.root / "elsewhere"))
    res = cli("verify", "--store", str(built.root), "--json", code=1)
    kinds = {(p["kind"], p["detail"]) for p in res["problems"]}
    assert ("catalog", "catalog row without a version directory") in kinds
    assert ("ref", "points to a missing version") in kinds


# ---------------------------------------------------------------- ids and refs (section 2, part 2)
def test_only_real_version_ids_resolve(built: Store, tmp_path: Path) -> None:
    # a forged version outside the store, reachable by a 64-character path
    forged = tmp_path / "forged"
    prefix = os.path.relpath(forged, built.versions_dir) + "/"
    rel = prefix + "0" * (64 - len(prefix))  # a 64-character path: the old code took it as an id
    fake = built.versions_dir / rel
    fake.mkdir(parents=True)
    (fake / "manifest.json").write_text(json.dumps({"id": rel, "rows": 1}))
    pl.DataFrame({"a": [1]}).write_parquet(fake / "data.parquet")
    assert len(rel) == 64 and (built.versions_dir / rel / "manifest.json").exists()
    for ref in (rel, "../" * 5 + "etc/passwd", "../versions/" + built.resolve("p/small")):
        with pytest.raises(StoreError):
            built.resolve(ref)
        with pytest.raises(StoreError):
            built.read(ref)
    for bad in ("../x", "a" * 63 + "/", "/etc", "x" * 64):
        with pytest.raises(StoreError):
            built.version_dir(bad)
    # a real id, upper case or a prefix, still resolves
    vid = built.resolve("p/small")
    assert built.resolve(vid) == vid == built.resolve(vid.upper()) == built.resolve(vid[:10])


def test_a_forged_parent_is_refused_in_a_pipeline(built: Store, pipeline_dir: Path) -> None:
    spec = (
        "name: q\nsources: {fair: {path: fair.csv}}\n"
        "steps: {s: {use: sample, input: '@../../forged_0000000000000000000000000000000000000000000000000000', "
        "params: {n: 5}}}\n"
    )
    (pipeline_dir / "q.yaml").write_text(spec)
    res = runner.invoke(app, ["build", str(pipeline_dir / "q.yaml"), "--store", str(built.root)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "not a valid ref" in res.output or "neither a version id" in res.output


def test_refs_are_not_trimmed(cli: Any, built: Store) -> None:
    vid = built.resolve("p/small")
    for ref in (" p/small", "p/small ", "p/ small", "p/small\n", "p/small\t"):
        with pytest.raises(StoreError, match="spaces"):
            built.resolve(ref)
    res = cli("show", " p/small", "--store", str(built.root), "--json", code=1)
    assert "spaces" in res["error"]
    for bad in ("p/../small", "p//small", "/p/small", "p/small/", "p small"):
        with pytest.raises(StoreError):
            built.set_ref(bad, vid)
    with pytest.raises(StoreError):
        built.set_ref("p/x", "../" + vid)


def test_a_garbage_manifest_is_a_clear_error(cli: Any, built: Store) -> None:
    vid = built.resolve("p/parts.test")
    (built.version_dir(vid) / "manifest.json").write_text("[1, 2")
    out = cli("show", "p/parts.test", "--store", str(built.root), code=1)
    assert "is damaged: manifest.json cannot be read" in out
    with pytest.raises(StoreError, match="is damaged"):
        built.read(vid)
    res = cli("verify", "--store", str(built.root), "--json", code=1)
    assert [p["version"] for p in res["problems"]] == [vid]


def test_report_tables_are_named_not_paths(cli: Any, tmp_path: Path) -> None:
    store = Store(tmp_path / "st")
    vid = "ab" * 32
    store.write_version(
        version_id=vid,
        name="t/x",
        frame=pl.DataFrame({"a": [1, 2]}),
        parents=[],
        step={"name": "x"},
        seed=0,
        tables={"issues": pl.DataFrame({"i": [0]})},
    )
    store.set_ref("t/x", vid)
    assert store.table("t/x", "issues")["i"].to_list() == [0]
    with pytest.raises(StoreError, match="no report table"):
        store.table("t/x", "../data")  # the old code read data.parquet through this
    _flip(store.version_dir(vid) / "tables" / "issues.parquet", 8)
    with pytest.raises(StoreError, match="is damaged"):
        store.table("t/x", "issues")
    res = cli("verify", "--store", str(store.root), "--json", code=1)
    assert "tables/issues.parquet" in res["problems"][0]["detail"]
    res = runner.invoke(app, ["verify", "--store", str(tmp_path / "nothing")])
    assert res.exit_code == 1 and "no store at" in res.output
