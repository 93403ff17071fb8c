"""Partitioned versions (issue 15): a version's rows are Parquet parts in `data/`, the manifest
lists them, the content hash is a tree over them; versions written by older code (one
`data.parquet`) still read, verify, export and repair."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from tamis.errors import StoreError
from tamis.pipelines import hashing
from tamis.pipelines.engines.parts import PartWriter, parts_hash
from tamis.pipelines.export import export_version
from tamis.pipelines.store import Store, files
from tamis.pipelines.verify import verify_store

STEP = {"name": "x", "type": "test"}


def _frame(n: int = 37) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "i": list(range(n)),
            "text": [f"doc {i} " + "w" * (i % 7) for i in range(n)],
            "x": [i / 3 if i % 5 else None for i in range(n)],
        }
    )


def _vid(n: int) -> str:
    return f"{n:064x}"


def _write_parts(store: Store, vid: str, df: pl.DataFrame, max_rows: int, batch: int = 5) -> dict:
    """Write `df` as an engine would: a PartWriter in `engine_tmp`, moved in by write_version."""
    out = store.engine_tmp(f"test-{max_rows}") / "out"
    writer = PartWriter(out, max_rows=max_rows)
    for start in range(0, df.height, batch):
        writer.write(df.slice(start, batch))
    parts = writer.close(df.schema)
    manifest = store.write_version(
        version_id=vid, name="t/p", parts_dir=out, parts=parts, parents=[], step=STEP, seed=0
    )
    return dict(manifest)


def _old_version(store: Store, vid: str, df: pl.DataFrame) -> dict:
    """A version laid out as the code before issue 15 wrote it: one data.parquet whose sha256 is
    the content hash, no `parts` in the manifest."""
    vdir = store.versions_dir / vid
    vdir.mkdir(parents=True)
    df.write_parquet(vdir / "data.parquet")
    st = (vdir / "data.parquet").stat()
    sha = hashing.hash_file(vdir / "data.parquet")
    manifest = {
        "id": vid,
        "name": "t/old",
        "pipeline": "t",
        "created_at": "2026-01-01T00:00:00.000+00:00",
        "parents": [],
        "step": STEP,
        "seed": 0,
        "schema": [{"name": k, "dtype": str(v)} for k, v in df.schema.items()],
        "rows": df.height,
        "content_hash": sha,
        "cache_key": vid,
        "run_id": None,
        "tamis_version": "0.0.0",
        "report": {},
        "tables": [],
        "artifacts": [],
        "files": {"data.parquet": {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha}},
    }
    (vdir / "manifest.json").write_text(json.dumps(manifest))
    store.catalog.add_version(manifest)
    store.set_ref("t/old", vid)
    return manifest


def test_frame_lazyframe_and_engine_parts_give_one_content_hash(tmp_path: Path) -> None:
    store = Store(tmp_path / "st")
    df = _frame(300)
    eager = store.write_version(
        version_id=_vid(1), name="t/a", frame=df, parents=[], step=STEP, seed=0
    )
    src = tmp_path / "src.parquet"
    df.write_parquet(src, row_group_size=17)  # streamed in batches of another size
    lazy = store.write_version(
        version_id=_vid(2), name="t/b", frame=pl.scan_parquet(src), parents=[], step=STEP, seed=0
    )
    engine = _write_parts(store, _vid(3), df, max_rows=1_000_000, batch=7)
    assert eager["content_hash"] == lazy["content_hash"] == engine["content_hash"]
    assert eager["content_hash"] == parts_hash(eager["parts"])
    assert eager["rows"] == 300 and eager["parts"][0]["path"] == "part-00000.parquet"
    assert sorted(eager["files"]) == ["data/part-00000.parquet"]
    for vid in (_vid(1), _vid(2), _vid(3)):
        assert store.read(vid).equals(df)
        assert store.scan(vid).collect().equals(df)
        assert store.check_version(vid, full=True) == []
    # the engine's out dir was moved in (its engine_tmp dir is the engine's to remove)
    assert [p for p in store.tmp_dir.rglob("*") if p.is_file()] == []


def test_part_boundaries_at_every_position_give_the_same_rows(tmp_path: Path) -> None:
    store = Store(tmp_path / "st")
    df = _frame(23)
    for max_rows in range(1, df.height + 2):
        manifest = _write_parts(store, _vid(max_rows), df, max_rows=max_rows, batch=4)
        assert len(manifest["parts"]) == -(-df.height // max_rows)
        assert [p["rows"] for p in manifest["parts"]][:-1] == [max_rows] * (
            len(manifest["parts"]) - 1
        )
        assert store.read(_vid(max_rows)).equals(df)
        assert store.data_files(_vid(max_rows))[-1].name == manifest["parts"][-1]["path"]
        assert store.head(_vid(max_rows), 6).equals(df.head(6))
    assert verify_store(store)["ok"] is True
    # one boundary gives one hash whatever the batch sizes
    again = _write_parts(store, _vid(100), df, max_rows=5, batch=3)
    assert again["content_hash"] == store.manifest(_vid(5))["content_hash"]


def test_an_empty_version_is_one_empty_part_with_its_schema(tmp_path: Path) -> None:
    store = Store(tmp_path / "st")
    df = _frame(0)
    store.write_version(version_id=_vid(1), name="t/e", frame=df, parents=[], step=STEP, seed=0)
    lazy = df.lazy().filter(pl.col("i") > 5)
    store.write_version(version_id=_vid(2), name="t/e", frame=lazy, parents=[], step=STEP, seed=0)
    for vid in (_vid(1), _vid(2)):
        assert store.read(vid).schema == df.schema and store.read(vid).height == 0
        assert len(store.manifest(vid)["parts"]) == 1


def test_old_single_file_versions_read_verify_export_and_repair(tmp_path: Path) -> None:
    store = Store(tmp_path / "st")
    df = _frame(50)
    old = _old_version(store, _vid(9), df)
    assert store.read("t/old").equals(df) and store.scan("t/old").collect().equals(df)
    assert store.data_files(_vid(9)) == [store.versions_dir / _vid(9) / "data.parquet"]
    assert store.data_path(_vid(9)).name == "data.parquet"
    assert store.estimate_bytes("t/old") > 0
    assert store.check_version(_vid(9), full=True) == []
    assert verify_store(store)["ok"] is True
    out = tmp_path / "old.csv"
    assert export_version(store, "t/old", out)["rows"] == 50
    assert pl.read_csv(out).height == 50
    # a forced rebuild with the same rows is no "replacement" (another hash, the same rows)
    new = store.write_version(
        version_id=_vid(9), name="t/old", frame=df, parents=[], step=STEP, seed=0, replace=True
    )
    assert "replaced" not in new and "parts" in new and new["content_hash"] != old["content_hash"]
    assert not store.replaced_dir.exists() and store.read("t/old").equals(df)
    # damage of an old version is found, named, and repaired by setting it aside
    _old_version(store, _vid(10), df)
    with open(store.versions_dir / _vid(10) / "data.parquet", "r+b") as fh:
        fh.seek(40)
        fh.write(b"\x00" * 20)
    with pytest.raises(StoreError, match="data.parquet does not match its content hash"):
        store.read(_vid(10))
    problems = verify_store(store)["problems"]
    assert [(p["kind"], p["version"]) for p in problems] == [("damaged", _vid(10))]
    repaired = store.rebuild_catalog()
    assert list(repaired["set_aside"]) == [_vid(10)]
    assert verify_store(store)["ok"] is True


def _multi(store: Store, n: int = 40, max_rows: int = 7) -> tuple[str, pl.DataFrame]:
    df = _frame(n)
    _write_parts(store, _vid(1), df, max_rows=max_rows)
    store.set_ref("t/p", _vid(1))
    return _vid(1), df


def test_a_damaged_part_is_found_and_named(tmp_path: Path) -> None:
    store = Store(tmp_path / "st")
    vid, _ = _multi(store)
    data = store.versions_dir / vid / "data"
    # altered in place (same size): the read hashes it because its mtime moved
    path = data / "part-00002.parquet"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match=r"data/part-00002.parquet does not match"):
        store.read(vid)
    with pytest.raises(StoreError, match=r"data/part-00002.parquet does not match"):
        store.scan(vid)
    res = verify_store(store)
    assert [p["detail"] for p in res["problems"]] == [
        "data/part-00002.parquet does not match its content hash"
    ]
    # truncated and missing parts: found by the cheap checks of a cache hit
    os.truncate(data / "part-00004.parquet", 10)
    (data / "part-00005.parquet").unlink()
    problems = store.check_version(vid)
    assert "data/part-00004.parquet has 10 bytes" in " ".join(problems)
    assert "data/part-00005.parquet is missing" in problems
    found = store.set_aside_damaged([vid])
    assert vid in found and not store.has_version(vid)
    assert len(list(store.damaged_dir.iterdir())) == 1  # kept aside, never deleted


def test_a_manifest_that_lies_about_its_parts_is_damage(tmp_path: Path) -> None:
    store = Store(tmp_path / "st")
    vid, _ = _multi(store)
    path = store.versions_dir / vid / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["parts"] = manifest["parts"][:-1]  # a part dropped from the list
    path.write_text(json.dumps(manifest))
    assert "the manifest's content hash is not the hash of its parts" in store.check_version(vid)
    details = [p["detail"] for p in verify_store(store)["problems"]]
    assert any("holds files no part lists: part-00005.parquet" in d for d in details)
    manifest["parts"] = "nonsense"
    path.write_text(json.dumps(manifest))
    assert store.check_version(vid) == ["manifest.json's parts list is malformed"]
    assert verify_store(store)["ok"] is False
    with pytest.raises(StoreError, match="malformed"):
        store.read(vid)
    with pytest.raises(StoreError, match="malformed"):
        store.estimate_bytes(vid)


def test_export_of_a_multi_part_version(tmp_path: Path) -> None:
    store = Store(tmp_path / "st")
    vid, df = _multi(store, n=40, max_rows=7)
    assert len(store.data_files(vid)) == 6
    for suffix, reader in (
        ("parquet", pl.read_parquet),
        ("csv", pl.read_csv),
        ("jsonl", pl.read_ndjson),
        ("json", pl.read_json),
    ):
        out = tmp_path / f"out.{suffix}"
        assert export_version(store, "t/p", out)["rows"] == 40
        back = reader(out)
        assert back.select("i", "text").equals(df.select("i", "text")), suffix


def test_a_cache_hit_on_200_parts_hashes_nothing_and_is_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "st")
    df = pl.DataFrame({"i": range(2000), "s": [f"row {i}" for i in range(2000)]})
    manifest = _write_parts(store, _vid(1), df, max_rows=10, batch=500)
    assert len(manifest["parts"]) == 200
    files.HASHED.clear()
    calls: list[Path] = []
    real = files.hash_file

    def counting(path: Path) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(files, "hash_file", counting)
    fresh = Store(tmp_path / "st")  # another process's view: nothing memoised
    started = time.perf_counter()
    assert fresh.set_aside_damaged([_vid(1)]) == {}
    assert fresh.has_version(_vid(1))
    assert fresh.manifest_by_id(_vid(1))["rows"] == 2000
    seconds = time.perf_counter() - started
    assert calls == []  # no part re-hashed
    assert seconds < 2.0, seconds
    assert fresh.check_version(_vid(1), full=True) == []  # verify hashes them all
    assert len(calls) == 200


def test_write_version_refuses_parts_it_cannot_trust(tmp_path: Path) -> None:
    store = Store(tmp_path / "st")
    df = _frame(10)
    with pytest.raises(StoreError, match="either frame, or parts_dir with parts"):
        store.write_version(version_id=_vid(1), name="t/x", parents=[], step=STEP, seed=0)
    outside = tmp_path / "outside"
    parts = PartWriter(outside).close_with(df)
    with pytest.raises(StoreError, match="not inside the store's tmp dir"):
        store.write_version(
            version_id=_vid(1),
            name="t/x",
            parts_dir=outside,
            parts=parts,
            parents=[],
            step=STEP,
            seed=0,
        )
    assert (outside / "part-00000.parquet").exists()  # never moved nor deleted
    inside = store.engine_tmp("x") / "out"
    parts = PartWriter(inside).close_with(df)
    (inside / "spill.arrow").write_bytes(b"x")
    with pytest.raises(StoreError, match="not listed parts: spill.arrow"):
        store.write_version(
            version_id=_vid(1),
            name="t/x",
            parts_dir=inside,
            parts=parts,
            parents=[],
            step=STEP,
            seed=0,
        )
    assert not store.has_version(_vid(1))


def test_engine_tmp_dirs_are_cleared_only_when_their_process_is_gone(tmp_path: Path) -> None:
    store = Store(tmp_path / "st")
    mine = store.engine_tmp("near_dedup/bands")
    assert mine.parent == store.tmp_dir and mine.name.startswith("near_dedup_bands.")
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], text=True, capture_output=True
    ).stdout.strip()
    dead = store.tmp_dir / f"spill.{gone}.cafe0001"
    (dead / "b").mkdir(parents=True)
    live = store.tmp_dir / "spill.1.cafe0002"  # pid 1 is alive
    live.mkdir()
    assert store.clean_tmp() == 1
    assert mine.exists() and live.exists() and not dead.exists()
